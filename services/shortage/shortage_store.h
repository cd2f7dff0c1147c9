#pragma once
// All SQL of the shortage service. Every change writes its event to the
// `events` table in the same transaction (AppendEvent), numbered by the
// single-row `event_counter` (see migrations/0001_shortage.sql for why that
// gives commit order), and NOTIFYs `shortage_events` so that every replica's
// EventHub reads it.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/db/pool.h"
#include "common/page_token.h"
#include "medkoord/shortage/v1/shortage.pb.h"
#include "services/shortage/allocation.h"

namespace medkoord::shortage {

namespace v1 = ::medkoord::shortage::v1;

inline constexpr char kEventChannel[] = "shortage_events";

// Who makes a change, and when (stamped on the rows and the event).
struct Actor {
  std::string principal_id;
  absl::Time time;
};

template <typename T>
struct Page {
  std::vector<T> items;
  std::vector<std::string> next_after;  // keyset of the last item when there may be more
};

// Cover as the API shows it: weeks, or unbounded.
void SetWeeksOfCover(v1::WeeksOfCover* out, const Cover& cover);

// One row of the event log, with what the feed filters on.
struct StoredEvent {
  int64_t sequence = 0;
  v1::EventType type = v1::EVENT_TYPE_UNSPECIFIED;
  std::string shortage_id;
  std::string atc_code;
  int region = 0;  // position events: the region; else 0
  std::string payload;  // serialized v1::ShortageEvent
};

class ShortageStore {
 public:
  explicit ShortageStore(db::Pool& pool) : pool_(pool) {}

  // Prepares the statements on a new connection (db::PoolOptions::prepare).
  static void Prepare(pqxx::connection& connection);

  // ---- shortages
  // ALREADY_EXISTS when the requested shortage_id is taken; a repeated
  // request_id returns the first shortage.
  absl::StatusOr<v1::ShortageRecord> Announce(const v1::AnnounceShortageRequest& request, const Actor& actor);
  absl::StatusOr<v1::ShortageRecord> GetShortage(const std::string& id);
  absl::StatusOr<Page<v1::ShortageRecord>> ListShortages(const v1::ListShortagesRequest& filters,
                                                         const PageRequest& page);
  absl::StatusOr<v1::ShortageRecord> UpdateShortage(const std::string& id, const v1::UpdateShortageRequest& request,
                                                    const Actor& actor);
  // `check(current)` decides whether the step is allowed (lifecycle rules).
  absl::StatusOr<v1::ShortageRecord> Transition(const std::string& id, v1::ShortageStatus to,
                                                const std::string& reason,
                                                const std::function<absl::Status(v1::ShortageStatus)>& check,
                                                const Actor& actor);

  // ---- positions
  absl::StatusOr<v1::RegionalPosition> ReportPosition(const std::string& id, const v1::RegionalPosition& position,
                                                      const std::string& request_id, const Actor& actor);
  // region 0: all regions. current_only: the newest position of each region.
  absl::StatusOr<Page<v1::RegionalPosition>> ListPositions(const std::string& id, int region, bool current_only,
                                                           const PageRequest& page);
  // The newest position of each region that has reported, in region order.
  absl::StatusOr<std::vector<v1::RegionalPosition>> CurrentPositions(const std::string& id);

  // ---- allocations
  // Reads the current positions and hands them to `plan`, which returns the
  // allocation to store (state, lines, reasoning); all in one transaction.
  using PlanFn = std::function<absl::StatusOr<v1::Allocation>(const std::vector<v1::RegionalPosition>&)>;
  absl::StatusOr<v1::Allocation> ProposeAllocation(const std::string& id, const v1::ProposeAllocationRequest& request,
                                                   const PlanFn& plan, const Actor& actor);
  // `check(quantity)` validates the amendment against the stored quantity.
  absl::StatusOr<v1::Allocation> ApproveAllocation(const std::string& id, int64_t allocation_id,
                                                   const v1::ApproveAllocationRequest& request,
                                                   const std::function<absl::Status(int64_t)>& check,
                                                   const Actor& actor);
  absl::StatusOr<v1::Allocation> GetAllocation(const std::string& id, int64_t allocation_id);
  absl::StatusOr<Page<v1::Allocation>> ListAllocations(const std::string& id, v1::AllocationState state,
                                                       const PageRequest& page);

  // ---- guidance
  absl::StatusOr<v1::Guidance> PublishGuidance(const std::string& id, const v1::Guidance& guidance,
                                               const std::string& request_id, const Actor& actor);
  // version 0: the latest.
  absl::StatusOr<v1::Guidance> GetGuidance(const std::string& id, int version);
  absl::StatusOr<Page<v1::Guidance>> ListGuidance(const std::string& id, const PageRequest& page);

  // ---- meetings and actions
  absl::StatusOr<v1::Meeting> CreateMeeting(const std::string& id, const v1::Meeting& meeting,
                                            const std::string& request_id, const Actor& actor);
  absl::StatusOr<Page<v1::Meeting>> ListMeetings(const std::string& id, const PageRequest& page);
  absl::StatusOr<v1::Action> CreateAction(const std::string& id, const v1::Action& action,
                                          const std::string& request_id, const Actor& actor);
  absl::StatusOr<v1::Action> UpdateAction(const std::string& id, int64_t action_id, const v1::Action& action,
                                          const std::vector<std::string>& paths, const Actor& actor);
  absl::StatusOr<Page<v1::Action>> ListActions(const std::string& id, const std::vector<int>& statuses,
                                               const PageRequest& page);

  // ---- event log
  // Events with sequence > after, in order, at most `limit`.
  absl::StatusOr<std::vector<StoredEvent>> ReadEventsAfter(int64_t after, int limit);
  // The last committed sequence number (0 when there is none).
  absl::StatusOr<int64_t> HeadSequence();
  // The oldest sequence number still in the log (head + 1 when it is empty).
  absl::StatusOr<int64_t> OldestSequence();
  // Deletes the oldest events written before `older_than`, in batches, but
  // never one of the last `keep_last` numbers, and only a prefix of the log
  // (it stops at the first event it must keep). Returns how many went; 0
  // when another replica holds the prune lock.
  absl::StatusOr<int64_t> PruneEvents(absl::Time older_than, int64_t keep_last, int batch = 5000);

  // A dedicated connection LISTENing on kEventChannel.
  class Listener {
   public:
    ~Listener();
    // Returns after a notification arrived or `timeout` passed; UNAVAILABLE
    // when the connection broke (open a new Listener).
    absl::Status Wait(absl::Duration timeout);

   private:
    friend class ShortageStore;
    struct Receiver;
    std::unique_ptr<pqxx::connection> connection_;
    std::unique_ptr<Receiver> receiver_;
  };
  absl::StatusOr<std::unique_ptr<Listener>> Listen();

 private:
  db::Pool& pool_;
};

}  // namespace medkoord::shortage
