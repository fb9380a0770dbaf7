"""The classifier's life cycle: the torch model (`modeling`), its training (`loop`,
`training`), its Fisher information (`fisher`), weight quantization (`quantize`), the ONNX
graph that serves (`export`), and ONNX Runtime, which serves it (`runtime`: also the one home
of what the runtime executes, its native widths and kernels)."""
