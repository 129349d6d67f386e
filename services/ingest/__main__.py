from libs.common.serve import serve
from services.ingest.bootstrap import create_app

serve(create_app, "ingest")
