from libs.common.serve import serve
from services.console.bootstrap import create_app

serve(create_app, "console")
