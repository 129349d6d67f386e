from libs.common.serve import serve
from services.insights.bootstrap import create_app

serve(create_app, "insights")
