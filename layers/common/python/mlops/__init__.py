"""mlops: the domain library of the serverless MLOps platform.

Shipped as the common Lambda layer and imported by every function. The statistics and model
logic is pure (numpy, no boto3); AWS access lives in small store modules.
"""

__version__ = "0.1.0"
