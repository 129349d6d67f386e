from libs.common.migrations import run_env
from services.ingest.adapters.tables import metadata

run_env(metadata)
