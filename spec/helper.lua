-- Spec helper: drives the real loop from a spec, with a deadline, and fails
-- the spec on errors raised in callbacks and on handles left open. Also
-- runs luvhost (or lua5.4) as a child process for command-line specs.
--
--   local helper = require('spec.helper')
--   it('waits', function()
--     helper.run(function() require('timers').sleep(10) end)
--   end)

local uv = require('uv')
local diagnostics = require('internal.diagnostics')

local M = {}

M.luvhost = os.getenv('LUVHOST') or uv.exepath()
-- `make valgrind` runs child luvhost processes under memcheck too.
M.wrapper = os.getenv('LUVHOST_WRAPPER') or ''

-- run(body [, opts]): runs body in a coroutine on the loop until it
-- returns, then checks that no handle is left open. opts.timeout (ms,
-- default 10000) bounds the whole run. Errors in callbacks fail the spec.
-- opts.blocks (ms): the body holds the loop that long on purpose (the
-- blocking watchdog's limit, if lower, is raised meanwhile).
function M.run(body, opts)
  opts = opts or {}
  local timeout = opts.timeout or 10000
  local limits = process.blockingLimits()
  if opts.blocks and limits.warn > 0 and limits.warn < opts.blocks then
    process.blockingLimits({ warn = opts.blocks })
  else
    limits = nil
  end
  -- Under valgrind (make valgrind) everything runs ~20x slower.
  if M.wrapper ~= '' then timeout = timeout * 4 end
  local uncaught = {}
  local function on_uncaught(_, report)
    uncaught[#uncaught + 1] = report
    uv.stop()
  end
  process:on('uncaughtException', on_uncaught)

  local done, failure, timed_out = false, nil, false
  local co = coroutine.create(function()
    local ok, err = xpcall(body, debug.traceback)
    if not ok then failure = err end
    done = true
  end)
  -- Unreferenced: a body that waits for nothing is seen at once.
  local deadline = uv.new_timer()
  deadline:start(timeout, 0, function()
    timed_out = true
    uv.stop()
  end)
  deadline:unref()
  require('internal.uv').hide(deadline) -- not the spec's own: uv.walk skips it

  local ok, err = coroutine.resume(co)
  if not ok then failure, done = err, true end
  local stuck = false
  while not done and not timed_out and #uncaught == 0 do
    if not uv.run('once') and not done and not timed_out and
        #uncaught == 0 then
      stuck = true
      break
    end
  end

  deadline:close()
  process:off('uncaughtException', on_uncaught)
  if limits then process.blockingLimits(limits) end
  -- Closing is asynchronous (a peer's FIN, close callbacks): let the loop
  -- settle for up to 500 ms before counting what is left open. The list
  -- is --why-alive's: the script's handles and those of its HTTP servers.
  local settle_until = uv.hrtime() + 500e6
  repeat
    uv.run('nowait')
    local open = false
    for _, h in ipairs(diagnostics.handles()) do
      if not h.closing and h.active then open = true end
    end
    if not open then break end
    uv.sleep(1)
  until uv.hrtime() > settle_until
  local leaks = {}
  for _, h in ipairs(diagnostics.handles()) do
    if not h.closing then
      leaks[#leaks + 1] = diagnostics.describe(h, true)
      if h.handle then h.handle:close() end
    end
  end
  uv.run('nowait')

  if #uncaught > 0 then error('uncaught error in a callback: ' .. uncaught[1], 0) end
  if failure then error(failure, 0) end
  if timed_out then error(('timed out after %d ms'):format(timeout), 0) end
  if stuck then
    error('the body is still waiting, but nothing is left that could wake it', 0)
  end
  if #leaks > 0 then
    error('handles left open:\n  ' .. table.concat(leaks, '\n  '), 0)
  end
end

-- A counter to assert how often a callback ran: local c = helper.counter()
-- ... c.fn ... assert.equal(2, c.count)
function M.counter(fn)
  local c = { count = 0 }
  c.fn = function(...)
    c.count = c.count + 1
    if fn then return fn(...) end
  end
  return c
end

function M.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function slurp(path)
  local f = io.open(path, 'rb')
  if not f then return '' end
  local data = f:read('a')
  f:close()
  return data
end

-- exec(cmd [, input]) -> { stdout, stderr, code, signal }: runs a shell
-- command to completion (blocking: specs only), stdin from input.
function M.exec(cmd, input)
  local errfile = os.tmpname()
  local infile = '/dev/null'
  if input ~= nil then
    infile = os.tmpname()
    local f = assert(io.open(infile, 'wb'))
    f:write(input)
    f:close()
  end
  local pipe = assert(io.popen(('( %s ) 2>%s <%s'):format(cmd, errfile, infile)))
  local stdout = pipe:read('a')
  local _, how, code = pipe:close()
  local stderr = slurp(errfile)
  os.remove(errfile)
  if input ~= nil then os.remove(infile) end
  return {
    stdout = stdout,
    stderr = stderr,
    code = how == 'exit' and code or nil,
    signal = how == 'signal' and code or nil,
  }
end

-- luvhost(args [, input]): runs the luvhost under test; args is a string
-- of shell words.
function M.luvhost_exec(args, input, env)
  return M.exec(M.command(args, env), input)
end

-- The shell command that runs the luvhost under test with args.
function M.command(args, env)
  return (env and env .. ' ' or '') .. M.wrapper .. ' ' ..
    M.quote(M.luvhost) .. ' ' .. args
end

-- A fresh temporary directory, removed by the returned function.
function M.tmpdir()
  local path = os.tmpname()
  os.remove(path)
  assert(os.execute('mkdir -p ' .. M.quote(path)))
  return path, function() os.execute('rm -rf ' .. M.quote(path)) end
end

function M.write_file(path, data)
  local f = assert(io.open(path, 'wb'))
  f:write(data)
  f:close()
  return path
end

M.read_file = slurp

-- Everything a stream (a socket, a child's pipe) gives until its end,
-- read in the calling coroutine.
function M.read_all(stream)
  local parts = {}
  while true do
    local chunk = stream:read()
    if not chunk then break end
    parts[#parts + 1] = chunk
  end
  return table.concat(parts)
end

return M
