// The annual report page in a real browser: headless Chromium loads
// /reports/annual through the gateway with an API key (HTTP Basic, the key as
// password, given in the URL as a person would type it), and the test checks
// what the person sees: the title and year, the total, the seven figures
// drawn as SVG with their bars and labels, and in a screenshot the bars'
// colour actually painted. Without a key the report is not shown.
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/e2e/e2e_util.h"
#include "tests/e2e/suite.h"
#include "tests/support/postgres_cluster.h"

namespace medkoord::e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string ChromiumBinary() {
  for (const char* path : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (access(path, X_OK) == 0) return path;
  }
  return "";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs a shell command; its exit code.
int Shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Runs headless Chromium on `url`; its exit code, stdout in <profile>.out.
// As root it needs --no-sandbox; a profile of its own per run keeps it from
// touching (or being slowed by) anyone's browser profile.
int Chromium(const std::string& dir, const std::string& profile, const std::string& args, const std::string& url) {
  return Shell(absl::StrCat("timeout 90 ", ChromiumBinary(),
                          " --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run"
                          " --hide-scrollbars --user-data-dir=",
                          dir, "/", profile, " ", args, " '", url, "' >", dir, "/", profile, ".out 2>", dir, "/",
                          profile, ".log"));
}

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // 3 bytes per pixel
};

uint32_t Be32(const std::string& s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) | (uint32_t(uint8_t(s[at + 2])) << 8) |
         uint32_t(uint8_t(s[at + 3]));
}

// Decodes the 8-bit RGB/RGBA, non-interlaced PNGs Chromium writes.
std::optional<Image> DecodePng(const std::string& png) {
  if (png.size() < 8 || png.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) return std::nullopt;
  Image img;
  int channels = 0;
  std::string idat;
  for (size_t at = 8; at + 12 <= png.size();) {
    const uint32_t len = Be32(png, at);
    const std::string type = png.substr(at + 4, 4);
    if (at + 12 + len > png.size()) return std::nullopt;
    const std::string data = png.substr(at + 8, len);
    if (type == "IHDR") {
      img.width = static_cast<int>(Be32(data, 0));
      img.height = static_cast<int>(Be32(data, 4));
      const int depth = uint8_t(data[8]), colour = uint8_t(data[9]), interlace = uint8_t(data[12]);
      if (depth != 8 || interlace != 0 || (colour != 2 && colour != 6)) return std::nullopt;
      channels = colour == 6 ? 4 : 3;
    } else if (type == "IDAT") {
      idat += data;
    }
    at += 12 + len;
  }
  if (channels == 0) return std::nullopt;
  const size_t stride = static_cast<size_t>(img.width) * channels;
  std::vector<uint8_t> raw((stride + 1) * img.height);
  uLongf raw_len = raw.size();
  if (uncompress(raw.data(), &raw_len, reinterpret_cast<const Bytef*>(idat.data()), idat.size()) != Z_OK) {
    return std::nullopt;
  }
  std::vector<uint8_t> prev(stride, 0), cur(stride);
  img.rgb.reserve(static_cast<size_t>(img.width) * img.height * 3);
  for (int y = 0; y < img.height; ++y) {
    const uint8_t filter = raw[y * (stride + 1)];
    const uint8_t* in = &raw[y * (stride + 1) + 1];
    for (size_t x = 0; x < stride; ++x) {
      const int a = x >= static_cast<size_t>(channels) ? cur[x - channels] : 0;
      const int b = prev[x];
      const int c = x >= static_cast<size_t>(channels) ? prev[x - channels] : 0;
      int pred = 0;
      switch (filter) {
        case 0: pred = 0; break;
        case 1: pred = a; break;
        case 2: pred = b; break;
        case 3: pred = (a + b) / 2; break;
        case 4: {
          const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
          pred = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
          break;
        }
        default: return std::nullopt;
      }
      cur[x] = static_cast<uint8_t>(in[x] + pred);
    }
    for (int x = 0; x < img.width; ++x) {
      for (int k = 0; k < 3; ++k) img.rgb.push_back(cur[x * channels + k]);
    }
    std::swap(prev, cur);
  }
  return img;
}

int PixelsNear(const Image& img, int r, int g, int b) {
  int n = 0;
  for (size_t i = 0; i + 2 < img.rgb.size(); i += 3) {
    if (std::abs(img.rgb[i] - r) <= 4 && std::abs(img.rgb[i + 1] - g) <= 4 && std::abs(img.rgb[i + 2] - b) <= 4) ++n;
  }
  return n;
}

int Count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

class ReportPageBrowserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::PostgresCluster::BinariesAvailable()) GTEST_SKIP() << "PostgreSQL binaries not installed";
    if (ChromiumBinary().empty()) {
      GTEST_SKIP() << "chromium is not installed (deploy/local/install-packages.sh installs the Debian package)";
    }
  }
};

TEST_F(ReportPageBrowserTest, APersonWithAnApiKeySeesTheAnnualReportWithAllSevenFigures) {
  auto suite = Suite::Start();
  for (int attempt = 1; attempt < 4 && !suite.ok() && absl::StrContains(suite.status().message(), "listen"); ++attempt) {
    suite = Suite::Start();
  }
  ASSERT_TRUE(suite.ok()) << suite.status();
  auto key = (*suite)->CreateKey("browser-secretariat", "forum_secretariat");
  ASSERT_TRUE(key.ok()) << key.status();
  const std::string dir = (*suite)->dir();

  // The year's cases, imported with the CLI through the gateway.
  const std::string cli = Suite::BinaryDir() + "/tools/medkoord/medkoord";
  const std::string fixture = std::string(MEDKOORD_FIXTURES_DIR) + "/forum_cases_2024.csv";
  ASSERT_EQ(Shell(absl::StrCat("cd ", dir, " && MEDKOORD_ADDR=", (*suite)->gateway_addr(), " MEDKOORD_API_KEY=", *key, " ",
                             cli, " applications import ", fixture, " --json >import.out 2>&1")),
            0)
      << ReadFile(dir + "/import.out");
  // Assessment builds the report from intake's events, delivered
  // asynchronously: wait until the page counts all of them.
  const std::string basic = "Basic " + absl::Base64Escape("sekretariat:" + *key);
  const std::string path = "/reports/annual?year=2024";
  const absl::Time until = absl::Now() + absl::Seconds(60);
  while (!absl::StrContains(HttpGet((*suite)->http_port(), path, basic).second, "<strong>541</strong>")) {
    ASSERT_LT(absl::Now(), until) << "the report never counted the 541 imported cases";
    absl::SleepFor(absl::Milliseconds(200));
  }

  const std::string url = absl::StrCat("http://sekretariat:", *key, "@127.0.0.1:", (*suite)->http_port(), path);
  ASSERT_EQ(Chromium(dir, "profile-dom", "--dump-dom", url), 0) << ReadFile(dir + "/profile-dom.log");
  const std::string dom = ReadFile(dir + "/profile-dom.out");

  EXPECT_THAT(dom, HasSubstr("<title>Enkeltansøgninger 2024</title>"));
  EXPECT_THAT(dom, HasSubstr("<h1>Enkeltansøgninger 2024</h1>"));
  EXPECT_THAT(dom, HasSubstr("blev der registreret <strong>541</strong> enkeltansøgninger"));
  // Figure 3: the outcome, 371 of 541 recommended.
  EXPECT_THAT(dom, HasSubstr("371 (69 %)"));
  for (int i = 1; i <= 7; ++i) {
    SCOPED_TRACE(absl::StrCat("figure ", i));
    const std::string open = absl::StrCat("<figure id=\"figure-", i, "\">");
    const size_t start = dom.find(open);
    ASSERT_NE(start, std::string::npos);
    const std::string figure = dom.substr(start, dom.find("</figure>", start) - start);
    EXPECT_THAT(figure, HasSubstr(absl::StrCat("<figcaption>Figur ", i, ". ")));
    EXPECT_EQ(Count(figure, "<svg"), 1);
    // Bars (rect) or lines (polyline) with a tooltip each, and text labels.
    EXPECT_GE(Count(figure, "<rect") + Count(figure, "<polyline"), 1);
    EXPECT_GE(Count(figure, "<title>"), 1);
    EXPECT_GE(Count(figure, "<text"), 2);
  }
  // Figure 1 has a bar for 2024 and says so.
  EXPECT_THAT(dom, HasSubstr("<title>2024: 541</title>"));

  // The screenshot shows painted bars: figure 1 and the first category of
  // every breakdown use the palette's blue (#0072B2).
  const std::string png = dir + "/report.png";
  ASSERT_EQ(Chromium(dir, "profile-png", "--window-size=900,5000 --screenshot=" + png, url), 0)
      << ReadFile(dir + "/profile-png.log");
  auto image = DecodePng(ReadFile(png));
  ASSERT_TRUE(image.has_value()) << "screenshot is not a PNG we can read";
  EXPECT_EQ(image->width, 900);
  EXPECT_GT(PixelsNear(*image, 0x00, 0x72, 0xB2), 2000) << "no blue bars painted";
  EXPECT_GT(PixelsNear(*image, 0xE6, 0x9F, 0x00), 200) << "no second-category (orange) bars painted";

  // Without a key the browser gets the 401 challenge and no report.
  const std::string anonymous = absl::StrCat("http://127.0.0.1:", (*suite)->http_port(), path);
  Chromium(dir, "profile-anon", "--dump-dom", anonymous);
  const std::string anonymous_dom = ReadFile(dir + "/profile-anon.out");
  EXPECT_THAT(anonymous_dom, Not(HasSubstr("541")));
  EXPECT_THAT(anonymous_dom, Not(HasSubstr("Figur")));
  EXPECT_EQ(HttpGet((*suite)->http_port(), path, "").first, 401);
}

}  // namespace
}  // namespace medkoord::e2e
