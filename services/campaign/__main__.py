from libs.common.serve import serve
from services.campaign.bootstrap import create_app

serve(create_app, "campaign")
