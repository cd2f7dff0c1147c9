#pragma once
// The gateway's main(): settings (flags, else MEDKOORD_* environment), then
// either the bootstrap `--create_api_key=<principal> --roles=a,b [--region=..]`
// (prints a new key and exits; deploy/local uses it for the demo key) or serve.
//
// Settings beyond the common ones (listen, db_url, db_pool_size, db_statement_timeout,
// principal_key, shutdown_grace, log_level, max_message_bytes):
//   http_listen, <backend>_addr for every backend in the role table
//   (intake_addr, assessment_addr, shortage_addr, rwd_addr),
//   tls_cert_file, tls_key_file, client_ca_file, cert_map_file,
//   rate_limit_per_second (100), rate_limit_burst (200), default_deadline (30s),
//   api_key_cache_ttl (5s).

namespace medkoord::gateway {

int GatewayMain(int argc, char** argv);

}  // namespace medkoord::gateway
