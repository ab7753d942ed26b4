"""The rules a config value must follow, one module per concern, in pure Python.

Each rule is a function that returns the value it accepts and raises ValueError with one
line saying what is wrong (without the config key: the caller knows it). settings.py applies
them to stack config; the cloud-init builders can apply the same ones to what they render.
"""
