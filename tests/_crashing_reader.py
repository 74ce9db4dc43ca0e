"A clip reader that crashes its process (SIGSEGV, as a decoder bug would) on files whose name holds 'crash': for the containment tests."
import os, signal
from video_classifier.frames import load_video

def load_video_or_crash(path, **kwargs):
    if "crash" in os.path.basename(str(path)): os.kill(os.getpid(), signal.SIGSEGV)
    return load_video(path, **kwargs)
