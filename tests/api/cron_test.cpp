#include "api/cron.hpp"
