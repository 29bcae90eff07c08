"""Lets notebooks in this folder say `from nn import Neuron, Layer, MLP`, as the lecture does."""

from backprop.nn import MLP, Layer, Module, Neuron

__all__ = ["Module", "Neuron", "Layer", "MLP"]
