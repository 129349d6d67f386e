from libs.common.serve import serve
from services.scoring.bootstrap import create_app

serve(create_app, "scoring")
