"""The simulated module board (host only, CPython): front-end, converter and thermal
models that turn a battery block's state into the ADC codes a module sees.

See docs/frontend.md for the hardware these model and docs/ri.md for Ri captures.
"""
