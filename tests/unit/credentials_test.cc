#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "auth/caller_tokens.h"
#include "common/sha256.h"
#include "credentials/credential_loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "reload/reload_target.h"
#include "reload/reloadable_file.h"
#include "reload/reloader.h"

namespace gateway {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAccount[] = "AC0123456789abcdef0123456789abcdef";
constexpr char kKey[] = "SK0123456789abcdef0123456789abcdef";
constexpr char kKey2[] = "SKfedcba9876543210fedcba9876543210";

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "gateway-test-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void WriteFile(const fs::path& path, const std::string& contents) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
}

TEST(ReadTwilioAccountTest, ApiKeyAndAuthTokenForms) {
  std::map<std::string, std::string> values = {{"TWILIO_ACCOUNT_SID", kAccount},
                                               {"TWILIO_API_KEY", kKey},
                                               {"TWILIO_API_SECRET", "key-secret"},
                                               {"TWILIO_AUTH_TOKEN", "auth-token"}};
  auto lookup = [&values](const std::string& name) -> std::optional<std::string> {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
  absl::StatusOr<TwilioAccount> account = ReadTwilioAccount(lookup);
  ASSERT_TRUE(account.ok()) << account.status();
  EXPECT_TRUE(account->api_key);
  EXPECT_EQ(account->credentials.username, kKey);
  EXPECT_EQ(account->credentials.password, "key-secret");

  values.erase("TWILIO_API_KEY");
  account = ReadTwilioAccount(lookup);
  ASSERT_TRUE(account.ok()) << account.status();
  EXPECT_FALSE(account->api_key);
  EXPECT_EQ(account->credentials.username, kAccount);
  EXPECT_EQ(account->credentials.password, "auth-token");
}

// A Kubernetes Secret volume: each value is a symlink through "..data", which the kubelet
// flips atomically to a new timestamped directory on update.
class SecretVolume {
 public:
  explicit SecretVolume(const fs::path& root) : root_(root) {}

  void Publish(const std::map<std::string, std::string>& values) {
    const std::string version = "..v" + std::to_string(++version_);
    fs::create_directory(root_ / version);
    for (const auto& [name, value] : values) WriteFile(root_ / version / name, value);
    fs::create_directory_symlink(version, root_ / "..data_tmp");
    fs::rename(root_ / "..data_tmp", root_ / "..data");
    for (const auto& [name, value] : values) {
      if (!fs::is_symlink(root_ / name))
        fs::create_symlink(fs::path("..data") / name, root_ / name);
    }
  }

 private:
  fs::path root_;
  int version_ = 0;
};

TEST(CredentialDirectoryTest, LoadsReloadsOnChangeAndKeepsOldOnInvalid) {
  TempDir dir;
  SecretVolume volume(dir.path());
  volume.Publish({{"TWILIO_ACCOUNT_SID", kAccount},
                  {"TWILIO_API_KEY", kKey},
                  {"TWILIO_API_SECRET", "first-secret\n"}});  // --from-file keeps the newline.
  Snapshot<TwilioAccount> account;
  CredentialDirectory directory(dir.path().string(), account);

  ASSERT_EQ(directory.Check(), ReloadResult::kLoaded);
  std::shared_ptr<const TwilioAccount> first = account.Get();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->credentials.password, "first-secret");
  EXPECT_EQ(directory.Check(), ReloadResult::kUnchanged);

  volume.Publish({{"TWILIO_ACCOUNT_SID", kAccount},
                  {"TWILIO_API_KEY", kKey2},
                  {"TWILIO_API_SECRET", "second-secret"}});
  ASSERT_EQ(directory.Check(), ReloadResult::kLoaded);
  EXPECT_EQ(account.Get()->credentials.username, kKey2);
  EXPECT_EQ(account.Get()->credentials.password, "second-secret");
  // A reader that took the old snapshot still holds it.
  EXPECT_EQ(first->credentials.password, "first-secret");

  volume.Publish({{"TWILIO_ACCOUNT_SID", kAccount},
                  {"TWILIO_API_KEY", "not-a-key-sid"},
                  {"TWILIO_API_SECRET", "third-secret"}});
  std::string error;
  ASSERT_EQ(directory.Check(&error), ReloadResult::kInvalid);
  EXPECT_THAT(error, HasSubstr("TWILIO_API_KEY"));
  EXPECT_THAT(error, Not(HasSubstr("third-secret")));
  EXPECT_EQ(account.Get()->credentials.password, "second-secret");
  EXPECT_EQ(directory.Check(&error), ReloadResult::kUnchanged);  // Reported once.
}

TEST(CredentialDirectoryTest, EmptyDirectoryLeavesNothingLoaded) {
  TempDir dir;
  Snapshot<TwilioAccount> account;
  CredentialDirectory directory(dir.path().string(), account);
  std::string error;
  EXPECT_EQ(directory.Check(&error), ReloadResult::kInvalid);
  EXPECT_THAT(error, HasSubstr("TWILIO_ACCOUNT_SID"));
  EXPECT_EQ(account.Get(), nullptr);

  WriteFile(dir.path() / "TWILIO_ACCOUNT_SID", kAccount);
  WriteFile(dir.path() / "TWILIO_AUTH_TOKEN", "token");
  EXPECT_EQ(directory.Check(), ReloadResult::kLoaded);
  ASSERT_NE(account.Get(), nullptr);
  EXPECT_EQ(account.Get()->credentials.username, kAccount);
}

TEST(ReloadableFileTest, ParsesOnChangeAndKeepsOldValueOnError) {
  TempDir dir;
  const fs::path path = dir.path() / "tokens";
  Snapshot<CallerTokens> tokens;
  ReloadableFile<CallerTokens> file(path.string(), &CallerTokens::Parse, tokens);
  std::string error;
  EXPECT_EQ(file.Check(&error), ReloadResult::kInvalid);  // Missing.
  EXPECT_THAT(error, HasSubstr("cannot be read"));

  WriteFile(path, "billing sha256:" + Sha256Hex("t1") + "\n");
  EXPECT_EQ(file.Check(), ReloadResult::kLoaded);
  EXPECT_EQ(tokens.Get()->Find("t1"), "billing");
  EXPECT_EQ(file.Check(), ReloadResult::kUnchanged);

  WriteFile(path, "billing garbage\n");
  EXPECT_EQ(file.Check(&error), ReloadResult::kInvalid);
  EXPECT_THAT(error, HasSubstr("line 1"));
  EXPECT_EQ(tokens.Get()->Find("t1"), "billing");
}

TEST(ReloadTargetTest, ParsesOnlyWhenTheDigestChanges) {
  Snapshot<std::string> value;
  ReloadTarget<std::string> target("source", value);
  int parses = 0;
  auto parse_as = [&parses](std::string text) {
    return [&parses, text]() -> absl::StatusOr<std::string> {
      ++parses;
      return text;
    };
  };
  EXPECT_EQ(target.Offer("d1", parse_as("one"), nullptr), ReloadResult::kLoaded);
  EXPECT_EQ(*value.Get(), "one");
  EXPECT_EQ(target.Offer("d1", parse_as("ignored"), nullptr), ReloadResult::kUnchanged);
  EXPECT_EQ(parses, 1);
  EXPECT_EQ(*value.Get(), "one");
  EXPECT_EQ(target.Offer("d2", parse_as("two"), nullptr), ReloadResult::kLoaded);
  EXPECT_EQ(*value.Get(), "two");
  EXPECT_EQ(parses, 2);
}

TEST(ReloadTargetTest, InvalidKeepsTheValueAndIsReportedOnce) {
  Snapshot<std::string> value;
  ReloadTarget<std::string> target("/etc/thing", value);
  auto ok = []() -> absl::StatusOr<std::string> { return std::string("good"); };
  auto bad = []() -> absl::StatusOr<std::string> {
    return absl::InvalidArgumentError("line 3 is wrong");
  };
  std::string error;
  // Even the first check is compared with nothing: it always parses.
  EXPECT_EQ(target.Offer("", bad, &error), ReloadResult::kInvalid);
  EXPECT_EQ(error, "/etc/thing: line 3 is wrong");
  EXPECT_EQ(value.Get(), nullptr);
  EXPECT_EQ(target.Offer("d1", ok, &error), ReloadResult::kLoaded);
  EXPECT_EQ(target.Offer("d2", bad, &error), ReloadResult::kInvalid);
  EXPECT_EQ(*value.Get(), "good");
  EXPECT_EQ(target.Offer("d2", bad, &error), ReloadResult::kUnchanged);
  // Back to content seen before: a change, so it is parsed and installed again.
  EXPECT_EQ(target.Offer("d1", ok, &error), ReloadResult::kLoaded);
}

TEST(ReloaderTest, ChecksPeriodicallyAndReportsChangesOnly) {
  absl::Mutex mu;
  std::vector<std::string> reports;
  std::atomic<int> checks{0};
  std::atomic<int> changes_to_report{1};
  {
    Reloader reloader(absl::Milliseconds(10),
                      [&](absl::string_view what, ReloadResult result, const std::string&) {
                        absl::MutexLock lock(&mu);
                        reports.push_back(absl::StrCat(what, ":", ReloadResultName(result)));
                      });
    reloader.Add("thing", [&](std::string*) {
      ++checks;
      return changes_to_report.exchange(0) == 1 ? ReloadResult::kLoaded : ReloadResult::kUnchanged;
    });
    reloader.CheckAll();
    EXPECT_EQ(checks.load(), 1);
    reloader.Start();
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (checks.load() < 3 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
    EXPECT_GE(checks.load(), 3);
  }  // Destruction stops the thread.
  const int after_stop = checks.load();
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(checks.load(), after_stop);
  absl::MutexLock lock(&mu);
  EXPECT_EQ(reports, std::vector<std::string>{"thing:loaded"});
}

}  // namespace
}  // namespace gateway
