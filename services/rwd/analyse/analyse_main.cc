// medkoord-analyse: the offline analysis without the main CLI or a server.
#include <iostream>
#include <string>
#include <vector>

#include "services/rwd/analyse/analyse.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return medkoord::analyse::RunAnalyseCommand(args, std::cout, std::cerr);
}
