"""The Gradio web app of every family (`hfmodels app`) and the Space export (`hfmodels space export`).

Nothing here imports gradio until an app is built: `import hfmodels` stays free of it."""
