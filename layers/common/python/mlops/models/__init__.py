"""Model logic of the platform: training to ONNX, serving, evaluation, thresholds, model cards.

The package imports nothing on its own, on purpose: the inference function imports
`mlops.models.serving_model` (numpy and onnxruntime only), and an eager import here would drag
scikit-learn and skl2onnx into its cold start. Import the module you need:

- `signature`     the model's input signature (feature names, types, order); stdlib only
- `dataset`       a training set as plain columns: checks, time split, content hash; numpy only
- `evaluation`    classification metrics, calibration bins, per-slice metrics; numpy only
- `thresholds`    threshold policies (max F1, target recall or precision, fixed); numpy only
- `training`      the scikit-learn pipeline, trained and exported (scikit-learn, skl2onnx)
- `onnx_export`   deterministic skl2onnx export and the parity check (skl2onnx, onnx)
- `serving_model` what inference runs: sha256-checked ONNX session (numpy, onnxruntime)
- `card`          the model card per version, as JSON and Markdown; stdlib only
"""
