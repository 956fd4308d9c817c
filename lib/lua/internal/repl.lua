-- The prompt's evaluator (host/repl.c reads the lines): tries
-- "return <line>" first as lua.c does, keeps reading while the chunk is
-- incomplete, runs each entry on its own coroutine (so waiting calls work)
-- and prints results with util.inspect.

local load, select, tostring, xpcall = load, select, tostring, xpcall
local pack, concat = table.pack, table.concat
local traceback = debug.traceback

local M = {}

local pending -- lines of an incomplete chunk so far

-- The entry's traceback, without the frames of the prompt's machinery.
local function handler(err)
  local report = traceback(err, 2)
  local cut = report:find('\n\t%[C%]: in function \'xpcall\'')
  return cut and report:sub(1, cut - 1) or report
end

local function incomplete(err)
  return err:sub(-5) == '<eof>'
end

local function print_results(results)
  if results.n < 2 then return end
  local inspect = require('util').inspect
  local colors = require('uv').guess_handle(1) == 'tty' and
    process.env.NO_COLOR == nil
  local parts = {}
  for i = 2, results.n do
    parts[#parts + 1] = inspect(results[i], { colors = colors })
  end
  io.stdout:write(concat(parts, '\t'), '\n')
end

function M.eval(line)
  local source = pending and (pending .. '\n' .. line) or line
  local fn, err
  if pending == nil then fn = load('return ' .. source, '=stdin') end
  if fn == nil then fn, err = load(source, '=stdin') end
  if fn == nil then
    if incomplete(err) then
      pending = source
      return M.ready_hook(true)
    end
    pending = nil
    io.stderr:write(err, '\n')
    return M.ready_hook(false)
  end
  pending = nil
  local results = pack(xpcall(fn, handler))
  if results[1] then
    print_results(results)
  else
    io.stderr:write(tostring(results[2]), '\n')
  end
  io.stdout:flush()
  return M.ready_hook(false)
end

return M
