// grpc.health.v1 with bounded Watch streams, served by a real in-process gRPC server on a free
// port: Check answers, Watch sends the status and each change, the caps refuse the stream one
// too many (in all and per connection) and free their slots when streams end, Shutdown ends them.
#include "common/health.h"

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace kp {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

class HealthTest : public ::testing::Test {
 protected:
  void Start(HealthService::Limits limits) {
    health_ = std::make_unique<HealthService>(limits);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(health_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    health_->SetServingStatus("svc", true);
  }
  void TearDown() override {
    if (health_) health_->Shutdown();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
  // A new connection (channels with distinct arguments do not share one).
  std::unique_ptr<Health::Stub> Connect() {
    grpc::ChannelArguments args;
    args.SetInt("kp.test.connection", next_connection_++);
    return Health::NewStub(
        grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials(), args));
  }
  struct Watch {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> reader;
  };
  std::unique_ptr<Watch> StartWatch(Health::Stub& stub, const std::string& service) {
    auto w = std::make_unique<Watch>();
    w->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    HealthCheckRequest request;
    request.set_service(service);
    w->reader = stub.Watch(&w->ctx, request);
    return w;
  }
  // Polls until `health_->watches()` is `n`, within a deadline.
  bool WatchesBecome(int n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (health_->watches() != n && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
    return health_->watches() == n;
  }

  std::unique_ptr<HealthService> health_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  int next_connection_ = 0;
};

TEST_F(HealthTest, CheckAnswersKnownServicesAndNotFoundForOthers) {
  Start({});
  auto stub = Connect();
  HealthCheckRequest request;
  HealthCheckResponse response;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->Check(&ctx, request, &response).ok());  // "": the server as a whole
    EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  }
  request.set_service("svc");
  health_->SetServingStatus(false);
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->Check(&ctx, request, &response).ok());
    EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  }
  request.set_service("nope");
  grpc::ClientContext ctx;
  EXPECT_EQ(stub->Check(&ctx, request, &response).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(HealthTest, WatchSendsTheStatusThenEachChange) {
  Start({});
  auto stub = Connect();
  auto w = StartWatch(*stub, "svc");
  HealthCheckResponse r;
  ASSERT_TRUE(w->reader->Read(&r));
  EXPECT_EQ(r.status(), HealthCheckResponse::SERVING);
  health_->SetServingStatus("svc", false);
  ASSERT_TRUE(w->reader->Read(&r));
  EXPECT_EQ(r.status(), HealthCheckResponse::NOT_SERVING);
  // Unknown until set, then its status.
  auto unknown = StartWatch(*stub, "later");
  ASSERT_TRUE(unknown->reader->Read(&r));
  EXPECT_EQ(r.status(), HealthCheckResponse::SERVICE_UNKNOWN);
  health_->SetServingStatus("later", true);
  ASSERT_TRUE(unknown->reader->Read(&r));
  EXPECT_EQ(r.status(), HealthCheckResponse::SERVING);
  // Shutdown ends every stream.
  health_->Shutdown();
  EXPECT_FALSE(w->reader->Read(&r));
  EXPECT_EQ(w->reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(HealthTest, WatchesAreCappedInAllAndPerConnectionAndFreedWhenTheyEnd) {
  Start({.watches = 5, .watches_per_connection = 2});
  std::vector<std::unique_ptr<Health::Stub>> stubs;
  std::vector<std::unique_ptr<Watch>> open;
  HealthCheckResponse r;
  // Two on one connection, the third there refused.
  stubs.push_back(Connect());
  for (int i = 0; i < 2; ++i) {
    open.push_back(StartWatch(*stubs[0], "svc"));
    ASSERT_TRUE(open.back()->reader->Read(&r));
  }
  auto third = StartWatch(*stubs[0], "svc");
  EXPECT_FALSE(third->reader->Read(&r));
  EXPECT_EQ(third->reader->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // Other connections get theirs, up to 5 in all; the sixth is refused.
  for (int c = 1; c <= 2; ++c) {
    stubs.push_back(Connect());
    for (int i = 0; i < (c == 1 ? 2 : 1); ++i) {
      open.push_back(StartWatch(*stubs[c], "svc"));
      ASSERT_TRUE(open.back()->reader->Read(&r));
    }
  }
  ASSERT_TRUE(WatchesBecome(5));
  auto sixth = StartWatch(*stubs[2], "svc");
  EXPECT_FALSE(sixth->reader->Read(&r));
  EXPECT_EQ(sixth->reader->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // A watch cancelled by its client frees its slot: another may open.
  open[0]->ctx.TryCancel();
  (void)open[0]->reader->Finish();
  ASSERT_TRUE(WatchesBecome(4));
  auto again = StartWatch(*stubs[0], "svc");
  ASSERT_TRUE(again->reader->Read(&r));
  EXPECT_EQ(r.status(), HealthCheckResponse::SERVING);
  EXPECT_TRUE(WatchesBecome(5));
  // Check answers at the cap.
  grpc::ClientContext ctx;
  HealthCheckRequest request;
  EXPECT_TRUE(stubs[2]->Check(&ctx, request, &r).ok());
}

}  // namespace
}  // namespace kp
