import sys

from nexa.platform.simulator import serve_main
from notifications.simulators.sms import SmsSimulator

if __name__ == "__main__":
    sys.exit(serve_main("notifications.simulators", {"sms": SmsSimulator}))
