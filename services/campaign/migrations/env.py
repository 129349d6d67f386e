from libs.common.migrations import run_env
from services.campaign.adapters.tables import metadata

run_env(metadata)
