from libs.common.migrations import run_env
from services.feedback.adapters.tables import metadata

run_env(metadata)
