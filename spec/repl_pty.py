"""Drives a program on a pseudo-terminal for spec/repl_spec.lua.

    python3 repl_pty.py SESSION.json

SESSION.json: {"argv": [...], "env": {name: value}, "unset": [names],
"cols": 80, "rows": 24, "timeout": seconds per wait, "steps": [...]}. Each
step is one of
    {"send": text}          write text to the terminal (keys, lines)
    {"expect": text}        wait until text appears in the output after
                            the previous match (which it then moves past)
    {"screen": text}        wait until the screen shows text
    {"line": text}          wait until the cursor's row reads text
                            (trailing blanks ignored)
    {"absent": text}        text is not in the output after the last match
    {"exit": status}        wait for the program to end with status
                            (null: any); a signal counts as 128 + signal
    {"pause": ms}           let time pass (only where time is the point)

The screen is a small VT100 emulation (cursor moves, erasing, wrapping
with xterm's pending wrap, scrolling), enough to see what a user sees. A
report goes to stdout as JSON: ok, the failed step and why, the output,
the screen and the exit status. The program is killed at the end.
"""
import codecs
import fcntl
import json
import os
import select
import signal
import struct
import sys
import termios
import time


class Screen:
    def __init__(self, rows, cols):
        self.rows, self.cols = rows, cols
        self.lines = [[' '] * cols for _ in range(rows)]
        self.r = self.c = 0
        self.wrap = False
        self.state = None  # None, 'esc', 'csi'
        self.params = ''

    def scroll(self):
        self.lines.pop(0)
        self.lines.append([' '] * self.cols)

    def newline(self):
        self.wrap = False
        if self.r == self.rows - 1:
            self.scroll()
        else:
            self.r += 1

    def put(self, ch):
        if self.wrap:
            self.c = 0
            self.newline()
        self.lines[self.r][self.c] = ch
        if self.c == self.cols - 1:
            self.wrap = True
        else:
            self.c += 1

    def csi(self, final):
        private = self.params.startswith('?')
        params = self.params.lstrip('?')
        nums = [int(p) if p.isdigit() else 0 for p in params.split(';')]
        n = nums[0] if nums and nums[0] > 0 else 1
        self.wrap = False
        if private:
            return
        if final == 'A':
            self.r = max(0, self.r - n)
        elif final == 'B':
            self.r = min(self.rows - 1, self.r + n)
        elif final == 'C':
            self.c = min(self.cols - 1, self.c + n)
        elif final == 'D':
            self.c = max(0, self.c - n)
        elif final == 'G':
            self.c = min(self.cols - 1, n - 1)
        elif final in 'Hf':
            row = nums[0] if nums and nums[0] > 0 else 1
            col = nums[1] if len(nums) > 1 and nums[1] > 0 else 1
            self.r, self.c = min(self.rows, row) - 1, min(self.cols, col) - 1
        elif final == 'J':
            mode = nums[0] if nums else 0
            if mode == 0:
                self.lines[self.r][self.c:] = [' '] * (self.cols - self.c)
                for i in range(self.r + 1, self.rows):
                    self.lines[i] = [' '] * self.cols
            elif mode in (2, 3):
                self.lines = [[' '] * self.cols for _ in range(self.rows)]
        elif final == 'K':
            mode = nums[0] if nums else 0
            if mode == 0:
                self.lines[self.r][self.c:] = [' '] * (self.cols - self.c)
            elif mode == 1:
                self.lines[self.r][:self.c + 1] = [' '] * (self.c + 1)
            else:
                self.lines[self.r] = [' '] * self.cols

    def feed(self, text):
        for ch in text:
            if self.state == 'esc':
                if ch == '[':
                    self.state, self.params = 'csi', ''
                else:
                    self.state = None
                continue
            if self.state == 'csi':
                if '\x40' <= ch <= '\x7e':
                    self.state = None
                    self.csi(ch)
                else:
                    self.params += ch
                continue
            if ch == '\x1b':
                self.state = 'esc'
            elif ch == '\r':
                self.c, self.wrap = 0, False
            elif ch == '\n':
                self.newline()
            elif ch == '\b':
                self.c, self.wrap = max(0, self.c - 1), False
            elif ch == '\t':
                self.c = min(self.cols - 1, (self.c // 8 + 1) * 8)
            elif ch >= ' ':
                self.put(ch)

    def row(self, i):
        return ''.join(self.lines[i]).rstrip()

    def text(self):
        return '\n'.join(self.row(i) for i in range(self.rows)).rstrip()


def main():
    with open(sys.argv[1]) as f:
        session = json.load(f)
    rows, cols = session.get('rows', 24), session.get('cols', 80)
    timeout = session.get('timeout', 5)
    env = dict(os.environ)
    env.pop('NO_COLOR', None)
    env['TERM'] = 'xterm'
    env.update(session.get('env', {}))
    for name in session.get('unset', []):
        env.pop(name, None)

    pid, fd = os.forkpty()
    if pid == 0:
        try:
            os.execvpe(session['argv'][0], session['argv'], env)
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))

    screen = Screen(rows, cols)
    decoder = codecs.getincrementaldecoder('utf-8')('replace')
    output = ''
    mark = 0
    status = None
    report = {'ok': True}

    def pump(wait):
        nonlocal output
        r, _, _ = select.select([fd], [], [], wait)
        if not r:
            return True
        try:
            data = os.read(fd, 65536)
        except OSError:
            return False
        if not data:
            return False
        text = decoder.decode(data)
        output += text
        screen.feed(text)
        return True

    def reap(block):
        nonlocal status
        if status is not None:
            return True
        done, st = os.waitpid(pid, 0 if block else os.WNOHANG)
        if not done:
            return False
        if os.WIFEXITED(st):
            status = os.WEXITSTATUS(st)
        else:
            status = 128 + os.WTERMSIG(st)
        return True

    def wait_for(check):
        end = time.time() + timeout
        alive = True
        while True:
            if check():
                return True
            if time.time() > end:
                return False
            if alive:
                alive = pump(0.02)
            else:
                time.sleep(0.02)

    for i, step in enumerate(session['steps']):
        why = None
        if 'send' in step:
            os.write(fd, step['send'].encode())
        elif 'pause' in step:
            end = time.time() + step['pause'] / 1000
            while time.time() < end:
                pump(0.01)
        elif 'expect' in step:
            want = step['expect']
            if wait_for(lambda: output.find(want, mark) >= 0):
                mark = output.find(want, mark) + len(want)
            else:
                why = 'no %r in the output after the last match' % want
        elif 'screen' in step:
            want = step['screen']
            if not wait_for(lambda: want in screen.text()):
                why = 'the screen never showed %r' % want
        elif 'line' in step:
            want = step['line'].rstrip()
            if not wait_for(lambda: screen.row(screen.r) == want):
                why = 'the cursor row reads %r, not %r' % (
                    screen.row(screen.r), want)
        elif 'absent' in step:
            pump(0)
            if output.find(step['absent'], mark) >= 0:
                why = '%r is in the output' % step['absent']
        elif 'exit' in step:
            # Drain the output so the program is never blocked writing.
            end = time.time() + timeout
            while not reap(False) and time.time() < end:
                pump(0.02)
            while pump(0):
                if not select.select([fd], [], [], 0)[0]:
                    break
            if status is None:
                why = 'still running'
            elif step['exit'] is not None and status != step['exit']:
                why = 'exit status %d, not %d' % (status, step['exit'])
        else:
            why = 'unknown step %r' % step
        if why:
            report = {'ok': False, 'step': i + 1, 'why': why,
                      'step_text': json.dumps(step)}
            break

    if status is None:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        reap(True)
    try:
        os.close(fd)
    except OSError:
        pass
    report['output'] = output
    report['screen'] = screen.text()
    report['status'] = status
    json.dump(report, sys.stdout)


if __name__ == '__main__':
    main()
