// A C++ program linked to a Debian library (Boost.Program_options) and libstdc++.
#include <boost/program_options.hpp>
#include <iostream>

namespace po = boost::program_options;

int main(int argc, char** argv) {
    po::options_description options("server");
    options.add_options()("greeting", po::value<std::string>()->default_value("hello"), "what to say");
    po::variables_map given;
    po::store(po::parse_command_line(argc, argv, options), given);
    std::cout << given["greeting"].as<std::string>() << " from C++" << std::endl;
}
