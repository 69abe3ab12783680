"""The built-in model cards, one YAML file per pretrained model, in one folder per plugin.

Shipped as package data; each built-in plugin returns its folder from its ``zoo_cards`` hook.
"""
