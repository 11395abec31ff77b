// TLS credentials from flags: see tls.h.
#include "common/tls.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <filesystem>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"

ABSL_FLAG(bool, plaintext, false,
          "Serve and call without TLS (local development only). Otherwise TLS is required.");
ABSL_FLAG(std::string, tls_cert, "", "Server certificate chain (PEM); re-read when it changes.");
ABSL_FLAG(std::string, tls_key, "", "Server private key (PEM).");
ABSL_FLAG(std::string, tls_client_ca, "",
          "CA (PEM) that client certificates must chain to: set it to require mTLS from clients.");
ABSL_FLAG(std::string, tls_ca, "", "CA (PEM) that servers this process calls must chain to.");
ABSL_FLAG(std::string, tls_client_cert, "", "Client certificate (PEM) presented to peers (mTLS).");
ABSL_FLAG(std::string, tls_client_key, "", "Client private key (PEM) for --tls_client_cert.");
ABSL_FLAG(int, tls_reload_interval_seconds, 10, "How often certificate files are checked for changes.");

namespace kp::tls {
namespace {
bool Readable(const std::string& path) { return !path.empty() && std::filesystem::is_regular_file(path); }
}  // namespace

bool Plaintext() { return absl::GetFlag(FLAGS_plaintext); }

void ValidateFlags(config::Validator& v, bool server, bool needs_client) {
  if (Plaintext()) return;
  const std::string cert = absl::GetFlag(FLAGS_tls_cert), key = absl::GetFlag(FLAGS_tls_key);
  if (server) {
    v.Check(!cert.empty() && !key.empty(),
            "TLS is on: give --tls_cert and --tls_key (or --plaintext for local development)");
    v.Check(cert.empty() || Readable(cert), absl::StrCat("--tls_cert: cannot read ", cert));
    v.Check(key.empty() || Readable(key), absl::StrCat("--tls_key: cannot read ", key));
    const std::string client_ca = absl::GetFlag(FLAGS_tls_client_ca);
    v.Check(client_ca.empty() || Readable(client_ca), absl::StrCat("--tls_client_ca: cannot read ", client_ca));
  }
  if (needs_client) {
    const std::string ca = absl::GetFlag(FLAGS_tls_ca);
    v.Check(!ca.empty(), "TLS is on: give --tls_ca to verify the servers this process calls (or --plaintext)");
    v.Check(ca.empty() || Readable(ca), absl::StrCat("--tls_ca: cannot read ", ca));
    const std::string ccert = absl::GetFlag(FLAGS_tls_client_cert), ckey = absl::GetFlag(FLAGS_tls_client_key);
    v.Check(ccert.empty() == ckey.empty(), "--tls_client_cert and --tls_client_key go together");
  }
  v.Check(absl::GetFlag(FLAGS_tls_reload_interval_seconds) >= 1, "--tls_reload_interval_seconds must be >= 1");
}

std::shared_ptr<grpc::ServerCredentials> ServerCredentials() {
  if (Plaintext()) return grpc::InsecureServerCredentials();
  const std::string client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      absl::GetFlag(FLAGS_tls_key), absl::GetFlag(FLAGS_tls_cert), client_ca,
      absl::GetFlag(FLAGS_tls_reload_interval_seconds));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (!client_ca.empty()) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials() {
  if (Plaintext()) return grpc::InsecureChannelCredentials();
  const std::string ccert = absl::GetFlag(FLAGS_tls_client_cert);
  auto provider = ccert.empty()
      ? std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
            absl::GetFlag(FLAGS_tls_ca), absl::GetFlag(FLAGS_tls_reload_interval_seconds))
      : std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
            absl::GetFlag(FLAGS_tls_client_key), ccert, absl::GetFlag(FLAGS_tls_ca),
            absl::GetFlag(FLAGS_tls_reload_interval_seconds));
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider);
  options.watch_root_certs();
  if (!ccert.empty()) options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  return grpc::experimental::TlsCredentials(options);
}

}  // namespace kp::tls
