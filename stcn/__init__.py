"""STCN from Python: load weights, then segment a video from the masks of some of its frames.

    import stcn
    net = stcn.load("saves/stcn.pth")
    for labels in net.segment("clip.mp4", {0: first_mask}):
        ...

A thin layer over the inference core that the evaluation scripts use, so both give the same masks.
"""
from stcn.api import Segmenter, load

__all__ = ["Segmenter", "load"]
