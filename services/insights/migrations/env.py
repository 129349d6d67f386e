from libs.common.migrations import run_env
from services.insights.adapters.tables import metadata

run_env(metadata)
