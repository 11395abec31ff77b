// Transport security from flags: TLS on every listener and every outbound channel, from
// certificate files that are re-read when they change; plaintext only with --plaintext.
#pragma once

#include <memory>

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include "common/config.h"

namespace kp::tls {

// --plaintext, or --tls_cert/--tls_key (and --tls_client_ca for mTLS) for servers;
// --tls_ca (and --tls_client_cert/--tls_client_key for mTLS) when `needs_client`.
void ValidateFlags(config::Validator& v, bool server, bool needs_client);
bool Plaintext();
std::shared_ptr<grpc::ServerCredentials> ServerCredentials();
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials();

}  // namespace kp::tls
