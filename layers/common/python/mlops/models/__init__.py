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
- `training_job`  one training run: point-in-time set -> train -> register -> card (scikit-learn)
- `registry`      the registry's plain values: versions, alias moves, alias-at-time; stdlib only
- `registry_store` the registry in DynamoDB and S3: version numbers, aliases, history, cards
- `routing`       the deployment record and the sticky weighted router; stdlib only
- `deployment_store` reads and writes the deployment record (DynamoDB)
- `predict_request` what /predict and /predict/batch accept, checked field by field; stdlib only
- `entity_features` an entity's features: online answer + on-demand features + warnings
- `serving`       what inference does per request: route, features, score, shadow (numpy, onnxruntime)
- `serving_metrics` EMF metrics per model version (Powertools)
- `prediction_log` the prediction log and the feedback join (DynamoDB)
- `feedback`      what /feedback accepts; stdlib only
"""
