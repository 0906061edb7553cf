"""tinyml: memory-aware deployment of int8 ViTs and tiny CNNs to STM32 MCUs."""
__version__ = "0.1.0"
