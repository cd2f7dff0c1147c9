#include <gtest/gtest.h>

#include "tools/medkoord/settings.h"

namespace medkoord::cli {
namespace {

SettingsInputs Inputs(std::map<std::string, std::string> files) {
  SettingsInputs in;
  in.cwd = "/home/u/project/sub/dir";
  in.read_file = [files](const std::string& path) -> std::optional<std::string> {
    auto it = files.find(path);
    if (it == files.end()) return std::nullopt;
    return it->second;
  };
  return in;
}

TEST(CliSettingsTest, FlagsBeatEnvironmentBeatsLocalEnv) {
  SettingsInputs in = Inputs({{"/home/u/project/.medkoord/local.env",
                               "MEDKOORD_ADDR=file:1\nMEDKOORD_API_KEY=filekey\nMEDKOORD_CA_FILE=certs/ca.pem\n"}});
  in.flags["addr"] = "flag:1";
  in.env["MEDKOORD_API_KEY"] = "envkey";
  auto s = ResolveSettings(in);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->addr, "flag:1");
  EXPECT_EQ(s->addr_source, "flag");
  EXPECT_EQ(s->api_key, "envkey");
  EXPECT_EQ(s->api_key_source, "env");
  // Found two levels up; a relative CA path is relative to the project.
  EXPECT_EQ(s->ca_file, "/home/u/project/certs/ca.pem");
  EXPECT_EQ(s->ca_file_source, "/home/u/project/.medkoord/local.env");
}

TEST(CliSettingsTest, NearestLocalEnvWins) {
  SettingsInputs in = Inputs({{"/home/u/project/.medkoord/local.env", "MEDKOORD_ADDR=outer:1\n"},
                              {"/home/u/project/sub/.medkoord/local.env", "MEDKOORD_ADDR=inner:1\n"}});
  auto s = ResolveSettings(in);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->addr, "inner:1");
  EXPECT_EQ(s->api_key, "");
  EXPECT_EQ(s->api_key_source, "");
}

TEST(CliSettingsTest, NothingFoundLeavesSettingsEmpty) {
  auto s = ResolveSettings(Inputs({}));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->addr, "");
  EXPECT_EQ(s->addr_source, "");
}

TEST(CliSettingsTest, EnvFileSyntax) {
  auto vars = ParseEnvFile("# comment\n\nexport MEDKOORD_ADDR=\"127.0.0.1:7443\"\nMEDKOORD_API_KEY='k'\n", "f");
  ASSERT_TRUE(vars.ok());
  EXPECT_EQ(vars->at("MEDKOORD_ADDR"), "127.0.0.1:7443");
  EXPECT_EQ(vars->at("MEDKOORD_API_KEY"), "k");
  auto bad = ParseEnvFile("MEDKOORD_ADDR=x\nnot a setting\n", "/p/.medkoord/local.env");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "/p/.medkoord/local.env:2: expected KEY=VALUE");
}

TEST(CliSettingsTest, MalformedLocalEnvIsAnError) {
  auto s = ResolveSettings(Inputs({{"/home/u/project/sub/dir/.medkoord/local.env", "garbage\n"}}));
  EXPECT_FALSE(s.ok());
}

}  // namespace
}  // namespace medkoord::cli
