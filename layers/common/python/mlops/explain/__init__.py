"""Explanations of the served models, computed from their ONNX artifacts in numpy.

- `onnx_graph`  reads an ONNX model's nodes and attributes with the protobuf runtime that the
                serving layer already has; why not the `onnx` package or a sidecar: see there
- `treeshap`    exact path-dependent TreeSHAP of a tree ensemble
- `onnx_model`  what an artifact computes (imputer, scaler, trees or linear model, link) and
                its explanation, of the margin (log-odds before the sigmoid for boosting)
- `importance`  global importance (mean |SHAP| over validation rows) for the training record
- `explaining`  what ``POST /explain`` does: request, version, explanation, answer

TreeSHAP needs each tree node's training cover; the export writes it into the artifact's
``nodes_hitrates`` (`mlops.models.onnx_export.attach_node_covers`). Import the module you
need; the package imports nothing on its own.
"""
