"""Settings for every test run.

The suite runs on two pytest-xdist workers on a shared 2-core machine, where a function's cold
start (numpy, onnxruntime, Powertools imports) can pass Lambda's 10 s init limit while other
environments start at the same moment: a 502 that says nothing about the product. Tests give
localcloud a longer limit; tests/integration/test_runtime.py checks the limit itself.
"""

import os

os.environ.setdefault("LOCALCLOUD_INIT_TIMEOUT_S", "60")
