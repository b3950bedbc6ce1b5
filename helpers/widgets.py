"""ipywidgets front-ends for the notebooks. Each builder returns a widget to display.

Logic lives in the topic modules (masks, data, train, …); a builder here only wires
controls to those functions and redraws an output area.
"""
from __future__ import annotations
