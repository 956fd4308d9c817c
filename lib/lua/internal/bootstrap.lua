-- Runs once at start-up, before the command line's chunks: creates the
-- documented globals and nothing else (process, the timer functions, p).

local rawset, select = rawset, select
local concat = table.concat

local process = require('process')
local timers = require('timers')

rawset(_G, 'process', process)
rawset(_G, 'setTimeout', timers.setTimeout)
rawset(_G, 'setInterval', timers.setInterval)
rawset(_G, 'setImmediate', timers.setImmediate)
rawset(_G, 'clearTimeout', timers.clearTimeout)
rawset(_G, 'clearInterval', timers.clearInterval)
rawset(_G, 'clearImmediate', timers.clearImmediate)

local colors -- decided on first use: stdout is a terminal and NO_COLOR unset

-- p(...): pretty-prints its arguments on one line each call, and returns
-- them, so it can wrap an expression.
rawset(_G, 'p', function(...)
  local inspect = require('util').inspect
  if colors == nil then
    colors = require('uv').guess_handle(1) == 'tty' and
      process.env.NO_COLOR == nil
  end
  local n = select('#', ...)
  local parts = {}
  for i = 1, n do
    parts[i] = inspect((select(i, ...)), { colors = colors })
  end
  io.stdout:write(concat(parts, '\t'), '\n')
  return ...
end)
