-- make bench as a smoke test: scripts/bench/run --quick, shrunk further,
-- starts, runs every section and writes a well-formed report.md and PNG
-- charts. No figure is judged: a benchmark never fails on a number here.
-- Needs wrk, nginx and gnuplot (scripts/install-deps --bench, which
-- `make test` runs); node is optional, as in the bench itself.

local helper = require('spec.helper')

local quote = helper.quote

local PNG = '\137PNG\r\n\26\n'

-- The rows of the Markdown tables whose header row starts with `first`:
-- a list of cell lists (headers and separators left out).
local function table_rows(report, first)
  local rows, inside = {}, false
  for line in (report .. '\n'):gmatch('([^\n]*)\n') do
    if not inside then
      inside = line:find('| ' .. first .. ' |', 1, true) == 1
    elseif line:match('^|') then
      if not line:match('^|%-%-%-') then
        local cells = {}
        for cell in line:sub(2):gmatch('%s*([^|]-)%s*|') do cells[#cells + 1] = cell end
        rows[#rows + 1] = cells
      end
    else
      inside = false
    end
  end
  return rows
end

-- "12,345" -> 12345; nil for anything else.
local function number(cell)
  local plain = cell:gsub(',', '')
  return plain:match('^%-?%d+%.?%d*$') and tonumber(plain) or nil
end

local function row_of(rows, name, second)
  for _, cells in ipairs(rows) do
    if cells[1] == name and (not second or cells[2] == second) then return cells end
  end
end

describe('make bench --quick (smoke test)', function()
  local dir, cleanup, result, report
  local has_node = os.execute('command -v node >/dev/null 2>&1')

  setup(function()
    for _, tool in ipairs({ 'wrk', 'nginx', 'gnuplot', 'taskset' }) do
      assert(os.execute('command -v ' .. tool .. ' >/dev/null 2>&1'),
        tool .. ' is missing: scripts/install-deps --bench installs it')
    end
    dir, cleanup = helper.tmpdir()
    local env = table.concat({
      'LUVHOST=' .. quote(helper.luvhost), 'OUT=' .. quote(dir),
      'DURATION=1', 'WARMUP=0', 'SETTLE=0.2', "IDLE_COUNTS='0 100 200'",
      "ONLY='luvhost luvhost-nowatch node nginx threaded'", "MC_ONLY='luvhost-w1 luvhost-w2 nginx-w2'",
      'MC_SCENARIOS=ka-c50', 'STARTUP_RUNS=3',
    }, ' ')
    result = helper.exec(env .. ' scripts/bench/run --quick')
    report = helper.read_file(dir .. '/report.md')
  end)

  teardown(function()
    if cleanup then cleanup() end
  end)

  it('runs to the end and prints the report', function()
    assert.are.equal(0, result.code, result.stderr)
    assert.truthy(report:find('# luvhost benchmark report', 1, true))
    assert.truthy(result.stdout:find(report, 1, true), 'stdout is not the report')
  end)

  it('names the machine, the date, the versions, the settings and the noise', function()
    for _, field in ipairs({ 'Date', 'Machine', 'Versions', 'Settings', 'Noise' }) do
      assert.truthy(report:find('\n%- ' .. field .. ': %S'), field .. ' is missing')
    end
    assert.truthy(report:find('--quick', 1, true))
    assert.truthy(report:match('Date: %d%d%d%d%-%d%d%-%d%d'))
  end)

  it('has every section', function()
    for _, section in ipairs({ 'Idle connections', 'Throughput and cost, one core',
        'Multi-core', 'Startup' }) do
      assert.truthy(report:find('\n## ' .. section .. '\n', 1, true), section .. ' is missing')
    end
    assert.falsy(report:find('Not run', 1, true))
  end)

  it('counts threads and memory at each number of idle connections', function()
    local servers = { 'luvhost', 'luvhost-nowatch', 'nginx', 'threaded' }
    if has_node then servers[#servers + 1] = 'node' end
    local threads = table_rows(report, 'threads')
    local memory = table_rows(report, 'RSS, MB')
    for _, name in ipairs(servers) do
      local t, m = row_of(threads, name), row_of(memory, name)
      assert(t and m, name .. ' has no idle row')
      for i = 2, 4 do
        assert(number(t[i]), name .. ': threads cell ' .. i .. ' is ' .. t[i])
        assert(number(m[i]), name .. ': RSS cell ' .. i .. ' is ' .. m[i])
      end
      assert.are.equal(200, number(m[8]), name .. ': alive @200')
    end
    -- The two models: one thread per connection, and one loop (plus the
    -- blocking watchdog's thread, which luvhost-nowatch turns off).
    assert.is_true(number(row_of(threads, 'threaded')[4]) >= 200)
    assert.are.equal(2, number(row_of(threads, 'luvhost')[4]))
    assert.are.equal(1, number(row_of(threads, 'luvhost-nowatch')[4]))
  end)

  it('gives req/s, latency and CPU per request for each server and scenario', function()
    local rows = table_rows(report, 'server')
    local want = {}
    for _, name in ipairs({ 'luvhost', 'luvhost-nowatch', 'nginx', 'threaded', has_node and 'node' or nil }) do
      for _, scen in ipairs({ 'ka-c50', 'ka-c200', 'close-c50' }) do
        want[#want + 1] = { name, scen }
      end
    end
    for _, name in ipairs({ 'luvhost-w1', 'luvhost-w2', 'nginx-w2' }) do
      want[#want + 1] = { name, 'ka-c50', multi = true } -- no node: no ratios
    end
    for _, w in ipairs(want) do
      local cells = row_of(rows, w[1], w[2])
      assert(cells, w[1] .. ' ' .. w[2] .. ' has no row')
      for _, i in ipairs({ 3, 5, 6, 7, 10, 11, 13 }) do
        assert(number(cells[i]), ('%s %s: cell %d is %q'):format(w[1], w[2], i, cells[i]))
      end
      if has_node and not w.multi then
        assert(number(cells[4]) and number(cells[8]), w[1] .. ' ' .. w[2] .. ': ratios to node')
      end
    end
  end)

  it('times the startup of luvhost, lua5.4 and node', function()
    local rows = table_rows(report, 'command')
    local names = { "`luvhost -e ''`", "`lua5.4 -e ''`", has_node and "`node -e ''`" or nil }
    for _, name in ipairs(names) do
      local cells = row_of(rows, name)
      assert(cells, name .. ' has no row')
      assert(number(cells[2]) and number(cells[4]), name .. ': no figures')
      assert.are.equal('0', cells[5], name .. ': exit status')
    end
  end)

  it('draws the charts as PNG files the report links to', function()
    for _, chart in ipairs({ 'idle', 'cpu', 'rps', 'multicore' }) do
      local data = helper.read_file(dir .. '/' .. chart .. '.png')
      assert.are.equal(PNG, data:sub(1, 8), chart .. '.png is not a PNG file')
      assert.truthy(report:find('(' .. chart .. '.png)', 1, true), chart .. '.png is not linked')
    end
  end)
end)
