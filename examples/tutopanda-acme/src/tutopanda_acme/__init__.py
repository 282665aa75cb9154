"""Acme for tutopanda: the Acme image API as a tutopanda provider.

Installed beside tutopanda, this package registers (see ``pyproject.toml``):

* ``tutopanda.producers``: :data:`PRODUCERS`, the ``acme:pixel-*`` producers;
* ``tutopanda.clients``: :data:`ACME_CLIENT`, how to build the live Acme client;
* ``tutopanda.models``: :data:`MODELS_DIR`, declarations of Acme's models on Replicate.
"""

from pathlib import Path

from tutopanda_acme.client import ACME_CLIENT, AcmeClient, acme_live_client
from tutopanda_acme.producers import ACME_IMAGES, ACME_IMAGES_AIRFLOW, PRODUCERS

#: Model declaration files (one per model), joined to tutopanda's Replicate catalogue.
MODELS_DIR = Path(__file__).with_name("models")

__all__ = [
    "ACME_CLIENT",
    "ACME_IMAGES",
    "ACME_IMAGES_AIRFLOW",
    "MODELS_DIR",
    "PRODUCERS",
    "AcmeClient",
    "acme_live_client",
]
