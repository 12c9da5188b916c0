#pragma once

namespace herd {

// Tells the service manager that the server is ready (systemd's Type=notify): sends READY=1 to
// the datagram socket $NOTIFY_SOCKET names. Without NOTIFY_SOCKET it does nothing and returns
// true; false when the message could not be sent.
bool notify_ready();

}  // namespace herd
