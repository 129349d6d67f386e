from libs.common.serve import serve
from services.profile.bootstrap import create_app

serve(create_app, "profile")
