// The gateway: wires settings, database, authentication, the role table and
// the proxy together and serves until SIGTERM. See gateway_main.h.
#include "services/gateway/gateway_main.h"

int main(int argc, char** argv) { return medkoord::gateway::GatewayMain(argc, argv); }
