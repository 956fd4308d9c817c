-- Every public built-in module loads without touching the globals, and
-- built-ins win over same-named modules on package.path.

local helper = require('spec.helper')

local PUBLIC = { 'child_process', 'coro', 'dgram', 'dns', 'events', 'fs',
  'http', 'json', 'net', 'path', 'process', 'stream', 'timers', 'url', 'util' }

-- Loads a fresh copy of a module through the searchers require uses, with
-- its main chunk's _ENV (the first upvalue) replaced by a table that
-- records global writes.
local function globals_created_by(name)
  local created = {}
  for _, searcher in ipairs(package.searchers) do
    local loader, extra = searcher(name)
    if type(loader) == 'function' then
      local upname, env = debug.getupvalue(loader, 1)
      assert(upname == '_ENV' and rawequal(env, _G), name .. ' has no _ENV')
      debug.setupvalue(loader, 1, setmetatable({}, {
        __index = _G,
        __newindex = function(_, key) created[#created + 1] = tostring(key) end,
      }))
      return created, loader(name, extra)
    end
  end
  error('module not found: ' .. name)
end

describe('built-in modules', function()
  for _, name in ipairs(PUBLIC) do
    it(name .. ' creates no globals when loaded', function()
      local created, mod = globals_created_by(name)
      assert.same({}, created)
      assert.is_table(mod)
    end)
  end

  it('win over same-named modules on package.path', function()
    local dir, cleanup = helper.tmpdir()
    helper.write_file(dir .. '/path.lua', 'return { fake = true }\n')
    local r = helper.luvhost_exec([[-e "print(require('path').fake, type(require('path').join))"]],
      nil, 'LUA_PATH=' .. helper.quote(dir .. '/?.lua;;'))
    cleanup()
    assert.are.equal('nil\tfunction\n', r.stdout)
  end)

  it('keep internal modules from user code', function()
    local r = helper.luvhost_exec([[-e "require('internal.binding')"]])
    assert.are.equal(1, r.code)
    assert.matches("no builtin module 'internal.binding' %(internal%)", r.stderr)
  end)
end)
