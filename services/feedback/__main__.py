from libs.common.serve import serve
from services.feedback.bootstrap import create_app

serve(create_app, "feedback")
