// The gateway's Redis cache against a real redis-server: served from the cache, strict
// read-after-write, single flight, and Redis dying, hanging and coming back.
#include <signal.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <sstream>
#include <fstream>
#include <thread>

#include <grpcpp/create_channel.h>
#include <gtest/gtest.h>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/cache/redis_client.h"
#include "tests/integration/test_util.h"

namespace kp::testing {
namespace {

std::unique_ptr<ev1::EventService::Stub>& GatewayEvents() {
  static auto* stub = new std::unique_ptr<ev1::EventService::Stub>(ev1::EventService::NewStub(
      grpc::CreateChannel(S().gateway().address(), grpc::InsecureChannelCredentials())));
  return *stub;
}

struct Read {
  grpc::Status status;
  ev1::Event event;
  std::string cache;  // x-kp-cache
};

Read GatewayGet(const std::string& name, std::chrono::milliseconds deadline = std::chrono::milliseconds(10000)) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + deadline);
  ev1::GetEventRequest req;
  req.set_name(name);
  ev1::GetEventResponse resp;
  Read r;
  r.status = GatewayEvents()->GetEvent(&ctx, req, &resp);
  r.event = resp.event();
  const auto& md = ctx.GetServerInitialMetadata();
  if (auto it = md.find("x-kp-cache"); it != md.end()) r.cache.assign(it->second.data(), it->second.size());
  return r;
}

ev1::Event Rename(ev1::EventService::Stub& stub, const std::string& name, const std::string& title) {
  ev1::UpdateEventRequest req;
  req.mutable_event()->set_name(name);
  req.mutable_event()->set_title(title);
  req.mutable_update_mask()->add_paths("title");
  ev1::UpdateEventResponse resp;
  grpc::Status s = stub.UpdateEvent(Ctx().get(), req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return resp.event();
}


ev1::Event NewEvent() {
  const auto host = CreateOrganisation(UniqueId("ch"));
  return CreateEvent(UniqueId("cached"), {host.name()});
}

TEST(Cache, RepeatedReadIsServedFromTheCacheEvenWithTheBackendHung) {
  const auto e = NewEvent();
  EXPECT_EQ(GatewayGet(e.name()).cache, "miss");
  const Read second = GatewayGet(e.name());
  EXPECT_EQ(second.cache, "hit");
  EXPECT_EQ(second.event.SerializeAsString(), e.SerializeAsString());
  S().events().Signal(SIGSTOP);  // the events backend answers nothing now
  absl::Cleanup resume = [] { S().events().Signal(SIGCONT); };
  const Read third = GatewayGet(e.name(), std::chrono::milliseconds(2000));
  ASSERT_TRUE(third.status.ok()) << third.status.error_message();
  EXPECT_EQ(third.cache, "hit");
  EXPECT_EQ(third.event.title(), e.title());
}

TEST(Cache, WriteMadeDirectlyToTheBackendIsVisibleInTheVeryNextRead) {
  const auto e = NewEvent();
  for (int i = 0; i < 25; ++i) {
    ASSERT_TRUE(GatewayGet(e.name()).status.ok());  // cached now
    const std::string title = absl::StrCat("Title ", i);
    const ev1::Event written = Rename(S().ev(), e.name(), title);
    const Read after = GatewayGet(e.name());
    ASSERT_TRUE(after.status.ok());
    EXPECT_EQ(after.event.title(), title) << "iteration " << i;
    EXPECT_EQ(after.event.etag(), written.etag());
  }
}

// Generation reads are batched (one MGET in flight, shared by every read waiting for it), and
// still strict: a read that starts after a write is acknowledged never sees what was there
// before. 24 readers hammer one event through the gateway while its title is rewritten 150
// times directly at the backend; each reader notes the last acknowledged title before every read.
TEST(Cache, BatchedGenerationReadsAreSharedAndNeverServeOlderThanAnAcknowledgedWrite) {
  const auto e = NewEvent();
  cache::RedisOptions ro;
  ro.address = S().redis().address();
  ro.command_timeout = absl::Seconds(2);
  cache::RedisClient redis(ro);
  auto mgets = [&] {
    auto info = redis.Command({"INFO", "commandstats"});
    if (!info.ok()) return int64_t{-1};
    const auto at = info->str.find("cmdstat_mget:calls=");
    return at == std::string::npos ? int64_t{0} : static_cast<int64_t>(std::stoll(info->str.substr(at + 19)));
  };
  auto hits = [] { return Sample(Scrape(S().gateway().metrics_port()), "kp_cache_requests_total{outcome=\"hit\"}"); };
  std::atomic<int> acknowledged{-1};
  std::atomic<bool> stop{false};
  std::atomic<int64_t> reads{0}, stale{0}, failed{0};
  auto version = [](const std::string& title) { return title.rfind("v ", 0) == 0 ? std::stoi(title.substr(2)) : -1; };
  const int64_t mgets_before = mgets();
  const double hits_before = hits();
  std::vector<std::thread> readers;
  for (int r = 0; r < 24; ++r) {
    readers.emplace_back([&] {
      while (!stop) {
        const int floor = acknowledged.load();
        const Read read = GatewayGet(e.name());
        ++reads;
        if (!read.status.ok()) {
          ++failed;
        } else if (floor >= 0 && version(read.event.title()) < floor) {
          ++stale;
        }
      }
    });
  }
  for (int v = 0; v < 150; ++v) {
    Rename(S().ev(), e.name(), absl::StrCat("v ", v));
    acknowledged = v;
    absl::SleepFor(absl::Milliseconds(2));  // readers get hits between writes (the pacing is the test's load shape)
  }
  stop = true;
  for (auto& t : readers) t.join();
  const double hit_count = hits() - hits_before;
  const int64_t mget_count = mgets() - mgets_before;
  std::cout << reads << " reads (" << hit_count << " hits) over 150 writes: " << stale << " stale, " << failed
            << " failed; " << mget_count << " generation reads (MGET), " << static_cast<double>(mget_count) / reads
            << " per read\n";
  EXPECT_EQ(stale, 0);
  EXPECT_EQ(failed, 0);
  EXPECT_GT(hit_count, 1000);
  // Shared: far fewer generation reads than reads (each read alone would be one MGET).
  EXPECT_LT(mget_count, reads / 2);
}

TEST(Cache, TwoHundredConcurrentColdReadsReachTheBackendAHandfulOfTimes) {
  const auto e = NewEvent();
  const std::string marker = "\"method\":\"/khartoum.events.v1.EventService/GetEvent\"";
  const int before = CountLines(S().events().log_path(), marker);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 200; ++i) {
    threads.emplace_back([&] {
      const Read r = GatewayGet(e.name());
      if (r.status.ok() && r.event.etag() == e.etag()) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 200);
  const int backend_calls = CountLines(S().events().log_path(), marker) - before;
  EXPECT_GE(backend_calls, 1);
  EXPECT_LE(backend_calls, 5) << "single flight should coalesce concurrent misses";
}

TEST(Cache, EntriesAreNamespacedAndCarryTheCallersView) {
  const auto e = NewEvent();
  ASSERT_TRUE(GatewayGet(e.name()).status.ok());
  cache::RedisOptions options;
  options.address = S().redis().address();
  cache::RedisClient redis(options);
  auto keys = redis.Command({"KEYS", "kp:v1:full:/khartoum.events.v1.EventService/GetEvent:*"});
  ASSERT_TRUE(keys.ok());
  EXPECT_GE(keys->elements.size(), 1u);
  auto ttl = redis.Command({"PTTL", keys->elements[0].str});
  ASSERT_TRUE(ttl.ok());
  EXPECT_GT(ttl->integer, 0);
  EXPECT_LE(ttl->integer, 60000);
}

TEST(Cache, RedisKilledDuringReadsAndWrites_NoFailedCallAndHitsReturn) {
  const auto e = NewEvent();
  std::atomic<bool> stop{false}, stop_writes{false};
  std::atomic<int> calls{0}, failures{0}, stale{0};
  std::vector<std::thread> threads;
  // Readers, and one writer that checks it reads its own writes through the gateway.
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      while (!stop) {
        const Read r = GatewayGet(e.name(), std::chrono::milliseconds(3000));
        ++calls;
        if (!r.status.ok()) ++failures;
      }
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; !stop && !stop_writes; ++i) {
      const ev1::Event written = Rename(*GatewayEvents(), e.name(), absl::StrCat("Stream ", i));
      const Read r = GatewayGet(e.name(), std::chrono::milliseconds(3000));
      calls += 2;
      if (!r.status.ok()) ++failures;
      else if (r.event.etag() != written.etag()) ++stale;
    }
  });
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  auto wait_calls = [&](int n) {
    const int target = calls + n;
    while (calls < target && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  };
  wait_calls(200);
  S().redis().Stop(SIGKILL);
  wait_calls(200);  // served from the backends while Redis is gone
  ASSERT_TRUE(S().redis().Start().ok());
  wait_calls(200);  // reads and writes go on against the restarted Redis
  stop_writes = true;  // (every write invalidates the entry: stop them to see hits)
  // Caching resumes by itself: poll (bounded) until a read is a hit again.
  bool hit = false;
  while (!hit && absl::Now() < deadline) hit = GatewayGet(e.name()).cache == "hit";
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_TRUE(hit) << "no cache hit after Redis came back";
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(stale.load(), 0);
  EXPECT_GT(calls.load(), 400);
}

TEST(Cache, NoStaleEntryAfterAnOutageDuringWhichWritesHappened) {
  const auto e = NewEvent();
  ASSERT_TRUE(GatewayGet(e.name()).status.ok());
  ASSERT_EQ(GatewayGet(e.name()).cache, "hit");
  // Redis hangs (its data intact): the write commits but cannot bump the generation.
  S().redis().Signal(SIGSTOP);
  const ev1::Event written = Rename(S().ev(), e.name(), "Written during the outage");
  const Read during = GatewayGet(e.name());
  ASSERT_TRUE(during.status.ok());
  EXPECT_EQ(during.event.title(), "Written during the outage");
  EXPECT_EQ(during.cache, "bypass");
  S().redis().Signal(SIGCONT);
  // From here on, every read sees the write: the old entry is never served again.
  const absl::Time until = absl::Now() + absl::Seconds(3);
  int reads = 0;
  while (absl::Now() < until) {
    const Read r = GatewayGet(e.name());
    ASSERT_TRUE(r.status.ok());
    ASSERT_EQ(r.event.etag(), written.etag()) << "stale entry served after " << reads << " reads";
    ++reads;
  }
  // And the cache works again.
  EXPECT_EQ(GatewayGet(e.name()).cache, "hit");
}

TEST(Metrics, EveryBinaryServesItsFamiliesAndTheyMove) {
  const auto e = NewEvent();
  const std::string get_ok =
      "kp_grpc_server_handled_total{code=\"OK\",method=\"/khartoum.events.v1.EventService/GetEvent\"}";
  const std::string gateway_before = Scrape(S().gateway().metrics_port());
  const std::string events_before = Scrape(S().events().metrics_port());
  ASSERT_FALSE(gateway_before.empty());
  ASSERT_FALSE(events_before.empty());
  for (const char* family : {"kp_grpc_server_handled_total", "kp_grpc_server_handling_seconds",
                             "kp_grpc_server_in_flight", "kp_cache_requests_total", "kp_redis_errors_total",
                             "kp_redis_rejected_total"}) {
    EXPECT_NE(gateway_before.find(absl::StrCat("# TYPE ", family)), std::string::npos) << family;
  }
  for (const char* family : {"kp_db_pool_connections", "kp_db_pool_connections_in_use",
                             "kp_db_connection_hold_seconds", "kp_db_query_seconds",
                             "kp_grpc_server_handling_seconds"}) {
    EXPECT_NE(events_before.find(absl::StrCat("# TYPE ", family)), std::string::npos) << family;
  }
  EXPECT_GT(Sample(events_before, "kp_db_pool_connections"), 0);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(GatewayGet(e.name()).status.ok());  // 1 miss, 4 hits
  const std::string gateway_after = Scrape(S().gateway().metrics_port());
  const std::string events_after = Scrape(S().events().metrics_port());
  EXPECT_EQ(Sample(gateway_after, get_ok) - std::max(0.0, Sample(gateway_before, get_ok)), 5);
  EXPECT_GE(Sample(gateway_after, "kp_cache_requests_total{outcome=\"hit\"}") -
                std::max(0.0, Sample(gateway_before, "kp_cache_requests_total{outcome=\"hit\"}")), 4);
  EXPECT_GE(Sample(events_after, get_ok) - std::max(0.0, Sample(events_before, get_ok)), 1);
  EXPECT_GT(Sample(events_after, "kp_db_connection_hold_seconds_count"),
            Sample(events_before, "kp_db_connection_hold_seconds_count"));
  EXPECT_GT(Sample(events_after, "kp_db_query_seconds_count"), Sample(events_before, "kp_db_query_seconds_count"));
  EXPECT_GT(Sample(gateway_after, "kp_grpc_server_handling_seconds_count{method=\"/khartoum.events.v1.EventService/GetEvent\"}"), 0);
}

TEST(Cache, GatewayWithoutRedisServesUncachedAndSaysSo) {
  auto uncached = S().StartGateway("gateway-uncached", /*cached=*/false);
  ASSERT_NE(uncached, nullptr);
  auto stub = ev1::EventService::NewStub(grpc::CreateChannel(uncached->address(), grpc::InsecureChannelCredentials()));
  const auto e = NewEvent();
  for (int i = 0; i < 2; ++i) {
    grpc::ClientContext ctx;
    ev1::GetEventRequest req;
    req.set_name(e.name());
    ev1::GetEventResponse resp;
    ASSERT_TRUE(stub->GetEvent(&ctx, req, &resp).ok());
    EXPECT_EQ(std::string(ctx.GetServerInitialMetadata().find("x-kp-cache")->second.data(), 6), "bypass");
  }
  EXPECT_GE(CountLines(uncached->log_path(), "serving uncached"), 1);
}

}  // namespace
}  // namespace kp::testing
