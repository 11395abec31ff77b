// The benchmark dataset: a realistic, reproducible (seeded) record of the dialogue at a chosen
// scale, loaded through the public API's bulk path (BatchCreate*, 1,000 per transaction, a few
// batches in flight). At scale 1: 500 generated organisations beside those already there (the
// seed), 10,000 events over 12 years, 100,000 participants, 1,000,000 registrations whose
// popularity is Zipf-like (s = 0.5: the first events have thousands of attendees, the long
// tail tens).
#include "tools/bench/dataset.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <thread>

#include <grpcpp/create_channel.h>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "khartoum/events/v1/events.grpc.pb.h"
#include "khartoum/organisations/v1/organisations.grpc.pb.h"
#include "khartoum/participants/v1/participants.grpc.pb.h"

ABSL_FLAG(double, scale, 1.0, "generate: size relative to 10k events / 100k participants / 1M registrations.");
ABSL_FLAG(uint32_t, seed, 42, "generate: random seed (the same seed and scale give the same data).");
ABSL_FLAG(int, first_year, 2014, "generate: the first of the 12 years the events span.");
ABSL_FLAG(int, batch, 1000, "generate: requests per BatchCreate call.");
ABSL_FLAG(int, load_concurrency, 4, "generate: BatchCreate calls in flight.");

namespace kp::bench {
namespace {

namespace ov1 = khartoum::organisations::v1;
namespace ev1 = khartoum::events::v1;
namespace pv1 = khartoum::participants::v1;

struct Place {
  const char* country;
  const char* city;
};
// Member states of the Khartoum Process and the cities its meetings go to.
constexpr Place kPlaces[] = {
    {"ER", "Asmara"},   {"ET", "Addis Ababa"}, {"SD", "Khartoum"}, {"SS", "Juba"},      {"KE", "Nairobi"},
    {"SO", "Mogadishu"}, {"DJ", "Djibouti"},   {"EG", "Cairo"},    {"TN", "Tunis"},     {"LY", "Tripoli"},
    {"UG", "Kampala"},  {"IT", "Rome"},        {"FR", "Paris"},    {"DE", "Berlin"},    {"ES", "Madrid"},
    {"NL", "The Hague"}, {"BE", "Brussels"},   {"SE", "Stockholm"}, {"MT", "Valletta"}, {"AT", "Vienna"},
    {"CH", "Geneva"},   {"NO", "Oslo"},        {"GB", "London"},   {"PT", "Lisbon"},    {"GR", "Athens"}};
constexpr const char* kTopics[] = {"trafficking-in-persons", "smuggling-of-migrants", "return-and-reintegration",
                                   "legal-migration", "border-management", "protection", "labour-migration",
                                   "diaspora-engagement", "root-causes", "data-and-research"};
constexpr const char* kGiven[] = {"Abeba", "Selam", "Yonas", "Mekdes", "Dawit", "Hiwot", "Ahmed", "Fatima", "Omar",
                                  "Amina", "Mohamed", "Aisha", "John", "Grace", "Peter", "Akinyi", "Otieno",
                                  "Giulia", "Marco", "Sophie", "Lukas", "Elena", "Pierre", "Marta", "Jonas",
                                  "Ingrid", "Tesfaye", "Nyakim", "Deng", "Hodan", "Abdi", "Mariam", "Karim"};
constexpr const char* kFamily[] = {"Tesfamariam", "Haile", "Gebre", "Mohammed", "Osman", "Abdullahi", "Ali",
                                   "Hassan", "Kamau", "Odhiambo", "Wanjiru", "Okello", "Deng", "Garang", "Rossi",
                                   "Bianchi", "Dubois", "Martin", "Schmidt", "Müller", "García", "López", "de Vries",
                                   "Janssens", "Andersson", "Nilsen", "Borg", "Ferreira", "Papadopoulos", "Ahmed"};
constexpr const char* kJobs[] = {"Migration officer", "Policy adviser", "Programme manager", "Border police officer",
                                 "Researcher", "Prosecutor", "Labour inspector", "Consular officer",
                                 "Social worker", "Head of unit", "Legal officer", "Data analyst"};
constexpr const char* kOrgWords[] = {"Horn", "Nile", "Coastal", "Regional", "Mediterranean", "Sahel", "Red Sea",
                                     "Lakes", "Highlands", "Capital", "Northern", "Southern", "Eastern"};
constexpr const char* kOrgKinds[] = {"Migrant Rights Network", "Institute for Migration Studies", "Legal Aid Centre",
                                     "Labour Recruiters Association", "Women's Forum", "Diaspora Council",
                                     "Reintegration Services", "Police Academy", "Statistics Office"};

// "THEMATIC_WORKSHOP" → "thematic workshop".
std::string KindLabel(ev1::EventKind kind) {
  std::string s = ev1::EventKind_Name(kind).substr(11);
  for (char& c : s) c = c == '_' ? ' ' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

template <typename T, size_t N>
const T& Pick(std::mt19937_64& rng, const T (&items)[N]) {
  return items[rng() % N];
}

// Runs `calls` batch calls on `concurrency` threads; false (and prints why) if any failed.
bool RunBatches(int calls, int concurrency, const std::function<grpc::Status(int)>& call, const char* what) {
  std::atomic<int> next{0};
  std::atomic<bool> failed{false};
  absl::Mutex mu;
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&] {
      for (int i = next++; i < calls && !failed; i = next++) {
        grpc::Status s = call(i);
        if (!s.ok()) {
          absl::MutexLock lock(&mu);
          if (!failed.exchange(true)) std::fprintf(stderr, "%s batch %d: %s\n", what, i, s.error_message().c_str());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  return !failed;
}

std::unique_ptr<grpc::ClientContext> BatchContext() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
  return ctx;
}

}  // namespace

int GenerateDataset(const std::string& target) {
  const double scale = absl::GetFlag(FLAGS_scale);
  const int batch = std::clamp(absl::GetFlag(FLAGS_batch), 1, 1000);
  const int concurrency = std::max(1, absl::GetFlag(FLAGS_load_concurrency));
  const int n_orgs = std::max(10, static_cast<int>(500 * scale));
  const int n_events = std::max(20, static_cast<int>(10000 * scale));
  const int n_people = std::max(100, static_cast<int>(100000 * scale));
  const int64_t n_regs = std::max<int64_t>(1000, static_cast<int64_t>(1000000 * scale));
  const int first_year = absl::GetFlag(FLAGS_first_year);
  std::mt19937_64 rng(absl::GetFlag(FLAGS_seed));

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  auto orgs = ov1::OrganisationService::NewStub(channel);
  auto events = ev1::EventService::NewStub(channel);
  auto people = pv1::ParticipantService::NewStub(channel);

  // The organisations already there (the seed): governments host, everyone sends people.
  std::vector<ov1::Organisation> existing;
  {
    ov1::ListOrganisationsRequest req;
    req.set_page_size(1000);
    do {
      ov1::ListOrganisationsResponse resp;
      if (auto s = orgs->ListOrganisations(BatchContext().get(), req, &resp); !s.ok()) {
        std::fprintf(stderr, "list organisations: %s\n", s.error_message().c_str());
        return 1;
      }
      for (auto& o : *resp.mutable_organisations()) existing.push_back(std::move(o));
      req.set_page_token(resp.next_page_token());
    } while (!req.page_token().empty());
  }
  std::vector<std::string> hosts, all_orgs;
  std::vector<std::string> org_country;
  for (const auto& o : existing) {
    if (o.kind() == ov1::ORGANISATION_KIND_GOVERNMENT) hosts.push_back(o.name());
    all_orgs.push_back(o.name());
    org_country.push_back(o.country_code());
  }

  struct Step {
    const char* what;
    int64_t rows;
    double seconds;
  };
  std::vector<Step> steps;
  const absl::Time start = absl::Now();

  // Organisations.
  std::vector<ov1::CreateOrganisationRequest> org_reqs(n_orgs);
  for (int i = 0; i < n_orgs; ++i) {
    const Place& place = Pick(rng, kPlaces);
    auto& r = org_reqs[i];
    r.set_organisation_id(absl::StrFormat("gen-o-%05d", i));
    auto* o = r.mutable_organisation();
    o->set_display_name(absl::StrCat(Pick(rng, kOrgWords), " ", Pick(rng, kOrgKinds), " ", i));
    o->set_kind(static_cast<ov1::OrganisationKind>(rng() % 2 ? int{ov1::ORGANISATION_KIND_CIVIL_SOCIETY}
                                                              : static_cast<int>(5 + rng() % 4)));
    o->set_country_code(place.country);
    o->set_process_role(ov1::PROCESS_ROLE_EXTERNAL);
    all_orgs.push_back(absl::StrCat("organisations/", r.organisation_id()));
    org_country.push_back(place.country);
  }
  if (hosts.empty()) hosts.push_back(all_orgs[existing.size()]);
  absl::Time t0 = absl::Now();
  if (!RunBatches((n_orgs + batch - 1) / batch, concurrency, [&](int b) {
        ov1::BatchCreateOrganisationsRequest req;
        for (int i = b * batch; i < std::min(n_orgs, (b + 1) * batch); ++i) *req.add_requests() = org_reqs[i];
        ov1::BatchCreateOrganisationsResponse resp;
        return orgs->BatchCreateOrganisations(BatchContext().get(), req, &resp);
      }, "organisations")) {
    return 1;
  }
  steps.push_back({"organisations", n_orgs, absl::ToDoubleSeconds(absl::Now() - t0)});

  // Events: 12 years, more of them in later years; a few cancelled ones (no registrations).
  std::vector<ev1::CreateEventRequest> event_reqs(n_events);
  std::vector<bool> cancelled(n_events, false);
  const int this_year = first_year + 11;
  for (int i = 0; i < n_events; ++i) {
    auto& r = event_reqs[i];
    r.set_event_id(absl::StrFormat("gen-e-%05d", i));
    auto* e = r.mutable_event();
    const int year = first_year + static_cast<int>(std::sqrt(static_cast<double>(rng() % 144)));
    const int month = 1 + static_cast<int>(rng() % 12), day = 1 + static_cast<int>(rng() % 28);
    const auto kind = static_cast<ev1::EventKind>(1 + rng() % 8);
    const Place& place = Pick(rng, kPlaces);
    const char* topic = Pick(rng, kTopics);
    std::string label = KindLabel(kind);
    label[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(label[0])));
    e->set_title(absl::StrFormat("%s on %s, %s %d (#%d)", label, topic, place.city, year, i));
    e->set_kind(kind);
    e->mutable_start_date()->set_year(year);
    e->mutable_start_date()->set_month(month);
    e->mutable_start_date()->set_day(day);
    *e->mutable_end_date() = e->start_date();
    e->mutable_end_date()->set_day(std::min(28, day + static_cast<int>(rng() % 3)));
    e->mutable_location()->set_country_code(place.country);
    e->mutable_location()->set_city(place.city);
    e->add_hosts(hosts[rng() % hosts.size()]);
    if (rng() % 2) {
      const std::string& co = hosts[rng() % hosts.size()];
      if (co != e->hosts(0)) e->add_co_hosts(co);
    }
    for (int p = static_cast<int>(rng() % 3); p > 0; --p) {
      const std::string& partner = all_orgs[existing.size() + rng() % n_orgs];
      if (std::find(e->partners().begin(), e->partners().end(), partner) == e->partners().end()) e->add_partners(partner);
    }
    e->add_topics(topic);
    e->set_summary(absl::StrCat("A ", KindLabel(kind), " of the Khartoum Process on ", topic,
                                " held in ", place.city, "."));
    cancelled[i] = rng() % 50 == 0;
    e->set_status(cancelled[i] ? ev1::EVENT_STATUS_CANCELLED
                  : year < this_year ? ev1::EVENT_STATUS_HELD
                                     : ev1::EVENT_STATUS_REGISTRATION_OPEN);
  }
  t0 = absl::Now();
  if (!RunBatches((n_events + batch - 1) / batch, concurrency, [&](int b) {
        ev1::BatchCreateEventsRequest req;
        for (int i = b * batch; i < std::min(n_events, (b + 1) * batch); ++i) *req.add_requests() = event_reqs[i];
        ev1::BatchCreateEventsResponse resp;
        return events->BatchCreateEvents(BatchContext().get(), req, &resp);
      }, "events")) {
    return 1;
  }
  steps.push_back({"events", n_events, absl::ToDoubleSeconds(absl::Now() - t0)});

  // Participants: from every organisation, seed ones a little more often.
  t0 = absl::Now();
  std::vector<uint32_t> person_seed(n_people);
  for (auto& s : person_seed) s = static_cast<uint32_t>(rng());
  if (!RunBatches((n_people + batch - 1) / batch, concurrency, [&](int b) {
        pv1::BatchCreateParticipantsRequest req;
        for (int i = b * batch; i < std::min(n_people, (b + 1) * batch); ++i) {
          std::mt19937_64 prng(person_seed[i]);
          auto* r = req.add_requests();
          r->set_participant_id(absl::StrFormat("gen-p-%06d", i));
          auto* p = r->mutable_participant();
          const size_t org = prng() % 3 == 0 && !existing.empty() ? prng() % existing.size() : prng() % all_orgs.size();
          p->set_given_name(Pick(prng, kGiven));
          p->set_family_name(Pick(prng, kFamily));
          p->set_organisation(all_orgs[org]);
          p->set_country_code(org_country[org]);
          p->set_job_title(Pick(prng, kJobs));
          p->set_gender(prng() % 100 < 48 ? pv1::GENDER_FEMALE : prng() % 50 ? pv1::GENDER_MALE : pv1::GENDER_OTHER);
          p->set_email(absl::StrFormat("participant%06d@example.org", i));
        }
        pv1::BatchCreateParticipantsResponse resp;
        return people->BatchCreateParticipants(BatchContext().get(), req, &resp);
      }, "participants")) {
    return 1;
  }
  steps.push_back({"participants", n_people, absl::ToDoubleSeconds(absl::Now() - t0)});

  // Registrations: Zipf-like popularity over a random order of the events (s = 0.5), each
  // event's attendees distinct participants (a stride through them, coprime to their count).
  std::vector<int> order;
  for (int i = 0; i < n_events; ++i) {
    if (!cancelled[i]) order.push_back(i);
  }
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<double> weight(order.size());
  for (size_t k = 0; k < order.size(); ++k) weight[k] = 1.0 / std::sqrt(static_cast<double>(k + 1));
  const double total_weight = std::accumulate(weight.begin(), weight.end(), 0.0);
  struct EventLoad {
    int event;
    int64_t count;
    uint64_t start, step;
  };
  std::vector<EventLoad> loads;
  int64_t assigned = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    int64_t c = std::min<int64_t>(n_people, static_cast<int64_t>(n_regs * weight[k] / total_weight));
    if (k + 1 == order.size()) c = std::min<int64_t>(n_people, std::max<int64_t>(0, n_regs - assigned));
    uint64_t step = 1 + rng() % n_people;
    while (std::gcd(step, static_cast<uint64_t>(n_people)) != 1) step = 1 + rng() % n_people;
    loads.push_back({order[k], c, rng() % n_people, step});
    assigned += c;
  }
  std::sort(loads.begin(), loads.end(), [](const EventLoad& a, const EventLoad& b) { return a.event < b.event; });
  // Flattened into batches, each batch within as few events as possible.
  struct Slice {
    size_t load;
    int64_t from, to;
  };
  std::vector<std::vector<Slice>> batches(1);
  int64_t in_batch = 0;
  for (size_t l = 0; l < loads.size(); ++l) {
    for (int64_t j = 0; j < loads[l].count;) {
      const int64_t take = std::min<int64_t>(loads[l].count - j, batch - in_batch);
      batches.back().push_back({l, j, j + take});
      j += take;
      in_batch += take;
      if (in_batch == batch) {
        batches.emplace_back();
        in_batch = 0;
      }
    }
  }
  if (batches.back().empty()) batches.pop_back();
  int64_t biggest = 0;
  for (const auto& l : loads) biggest = std::max(biggest, l.count);
  t0 = absl::Now();
  if (!RunBatches(static_cast<int>(batches.size()), concurrency, [&](int b) {
        pv1::BatchCreateRegistrationsRequest req;
        for (const Slice& s : batches[b]) {
          const EventLoad& l = loads[s.load];
          const auto& event = event_reqs[l.event];
          const bool past = event.event().start_date().year() < this_year;
          const bool training = event.event().kind() == ev1::EVENT_KIND_TRAINING;
          for (int64_t j = s.from; j < s.to; ++j) {
            const uint64_t person = (l.start + static_cast<uint64_t>(j) * l.step) % n_people;
            std::mt19937_64 prng(person * 7919 + static_cast<uint64_t>(l.event));
            auto* r = req.add_requests()->mutable_registration();
            r->set_event(absl::StrCat("events/", event.event_id()));
            r->set_participant(absl::StrFormat("participants/gen-p-%06d", person));
            const int role = static_cast<int>(prng() % 100);
            r->set_role(training ? (role < 90 ? pv1::REGISTRATION_ROLE_TRAINEE : pv1::REGISTRATION_ROLE_TRAINER)
                        : role < 60 ? pv1::REGISTRATION_ROLE_DELEGATE
                        : role < 75 ? pv1::REGISTRATION_ROLE_EXPERT
                        : role < 82 ? pv1::REGISTRATION_ROLE_HEAD_OF_DELEGATION
                        : role < 90 ? pv1::REGISTRATION_ROLE_SPEAKER
                                    : pv1::REGISTRATION_ROLE_OBSERVER);
            const int status = static_cast<int>(prng() % 100);
            r->set_status(past ? (status < 80 ? pv1::REGISTRATION_STATUS_ATTENDED
                                  : status < 90 ? pv1::REGISTRATION_STATUS_NO_SHOW
                                                : pv1::REGISTRATION_STATUS_CANCELLED)
                               : (status < 60 ? pv1::REGISTRATION_STATUS_REGISTERED
                                  : status < 95 ? pv1::REGISTRATION_STATUS_CONFIRMED
                                                : pv1::REGISTRATION_STATUS_CANCELLED));
          }
        }
        pv1::BatchCreateRegistrationsResponse resp;
        return people->BatchCreateRegistrations(BatchContext().get(), req, &resp);
      }, "registrations")) {
    return 1;
  }
  steps.push_back({"registrations", assigned, absl::ToDoubleSeconds(absl::Now() - t0)});

  const double total = absl::ToDoubleSeconds(absl::Now() - start);
  std::fprintf(stderr, "dataset (scale %g, seed %u) loaded through BatchCreate*, %d per call, %d in flight:\n", scale,
               absl::GetFlag(FLAGS_seed), batch, concurrency);
  for (const auto& s : steps) {
    std::fprintf(stderr, "  %-14s %9lld rows %8.1f s %9.0f rows/s\n", s.what, static_cast<long long>(s.rows), s.seconds,
                 s.seconds > 0 ? s.rows / s.seconds : 0);
  }
  std::fprintf(stderr, "  total %.1f s; the most popular event has %lld registrations\n", total,
               static_cast<long long>(biggest));
  std::printf("{\"scale\":%g,\"seed\":%u,\"seconds\":%.1f,\"steps\":[", scale, absl::GetFlag(FLAGS_seed), total);
  for (size_t i = 0; i < steps.size(); ++i) {
    std::printf("%s{\"collection\":\"%s\",\"rows\":%lld,\"seconds\":%.2f}", i ? "," : "", steps[i].what,
                static_cast<long long>(steps[i].rows), steps[i].seconds);
  }
  std::printf("],\"largest_event_registrations\":%lld}\n", static_cast<long long>(biggest));
  return 0;
}

}  // namespace kp::bench
