from libs.common.auth_schema.tables import metadata
from libs.common.migrations import run_env

run_env(metadata)
