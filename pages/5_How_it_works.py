"""How it works: one method on one photo, stage by stage, from the feature maps to the box and its IoU."""

import streamlit as st

from core.methods import METHODS
from core.stages import threshold_stages
from ui.controls import display_controls
from ui.page import start_page
from ui.render import prediction_summary
from ui.stages import cached_network_stages, render_stages
from ui.study import pick_study_photo, single_method_controls, target_for_photo

loaded = start_page("How it works")
if loaded is None:
    st.stop()
bundle = loaded.bundle
choice = single_method_controls(bundle)
method = choice.methods[0]
display = display_controls(choice.pipeline, choice.methods)
entry = METHODS[method]
st.markdown(f"How **{entry.label}** ({entry.paper}) turns a photo into a box, one step at "
            "a time, on one view of the photo at the network's input size (Explore's finer 'Detail' settings "
            "average several views). Moving τ redraws every stage from step 5 on without running the network "
            "again.")
photo = pick_study_photo("stages")
if photo is None:
    st.stop()
target = target_for_photo(choice, photo, bundle)
network = cached_network_stages(loaded, photo, method, choice.layer, target, choice.variant)
if network is None:
    st.stop()
prediction_summary(bundle, network.explanation(), target.label)
stages = threshold_stages(network, photo.image.shape[:2], display.box_for(method), photo.ground_truth)
render_stages(stages, photo.image, photo.ground_truth, display.alpha, display.colormap)
